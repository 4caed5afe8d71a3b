{{/* Labels every object carries besides its own (the kustomize base has only its own). */}}
{{- define "mlplatform.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{- define "mlplatform.labels" -}}
app.kubernetes.io/name: mlplatform
{{ include "mlplatform.helmLabels" . }}
{{- end }}

{{- define "mlplatform.selector" -}}
app.kubernetes.io/name: mlplatform
app.kubernetes.io/component: operator
{{- end }}

{{/* The image reference: repository:tag, the tag defaulting to the chart's appVersion. */}}
{{- define "mlplatform.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end }}

{{/* The webhook Service's DNS name in the release namespace. */}}
{{- define "mlplatform.webhookHost" -}}
{{- printf "mlplatform-webhook.%s.svc" .Release.Namespace -}}
{{- end }}

{{/* Whether the chart runs the Docker runner (else the Kubernetes runner only). */}}
{{- define "mlplatform.docker" -}}
{{- if .Values.runners.docker.enabled }}true{{ end -}}
{{- end }}

{{- define "mlplatform.checks" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.peering.enabled) -}}
{{- fail "replicas > 1 needs peering.enabled: true (one replica works, the others wait)" -}}
{{- end -}}
{{- if not (has .Values.webhook.certificates (list "self-managed" "cert-manager")) -}}
{{- fail "webhook.certificates is self-managed or cert-manager" -}}
{{- end -}}
{{- range .Values.namespaces -}}
{{- if regexMatch "[*?\\[!]" . -}}
{{- fail (printf "namespaces: %q is a pattern; a Role needs namespace names" .) -}}
{{- end -}}
{{- end -}}
{{- end }}
