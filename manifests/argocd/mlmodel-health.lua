-- Argo CD health of an MLModel (mlplatform.dev/v1alpha1), read from the status the operator
-- writes (docs/gitops.md). Argo CD runs it as resource.customizations.health.mlplatform.dev_MLModel
-- in gopher-lua (Lua 5.1): nothing newer than Lua 5.1 is used here.
--   Healthy      Ready is True for the current generation and no update is under way
--   Progressing  no status for this generation yet, the model is starting, or a new revision
--                is coming up behind the serving one
--   Suspended    spec.suspend is true and the workload is stopped
--   Degraded     otherwise, with the reason and message of the condition that says why
local hs = {}

local function condition(status, kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function why(c)
  if c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason
end

-- Reasons of a workload on its way up (not a failure: wait for it).
local starting = {
  ContainerCreating = true,
  ContainerStarting = true,
  ProbePending = true,
  NewRevisionStarting = true,
}

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report a status"
  return hs
end
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to act on generation " .. generation
  return hs
end

local ready = condition(status, "Ready")
if ready == nil or (generation ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition of generation " .. tostring(generation)
  return hs
end

if ready.status == "True" then
  local updating = condition(status, "Updating")
  if updating ~= nil and updating.status == "True" then
    if starting[updating.reason] then
      hs.status = "Progressing"
      hs.message = "Updating: " .. why(updating)
    else
      hs.status = "Degraded"
      hs.message = "Update failed: " .. why(updating)
    end
    return hs
  end
  hs.status = "Healthy"
  hs.message = why(ready)
  return hs
end

if ready.reason == "Suspended" and obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = why(ready)
  return hs
end
-- Not Ready yet on the way up (a readiness probe that has not passed since the start is
-- the server warming up); a model that was serving and lost Ready is Degraded.
if ready.status == "False" and (starting[ready.reason] or status.phase == "Starting") then
  hs.status = "Progressing"
  hs.message = why(ready)
  return hs
end
hs.status = "Degraded"
hs.message = why(ready)
return hs
