"""kopf's scanning of CRDs and namespaces is off exactly when a Role per namespace suffices."""

from __future__ import annotations

import kopf

from mlplatform.kube import handlers


def test_the_whole_cluster_keeps_kopfs_scanning_of_namespaces_and_crds() -> None:
    assert handlers.configure(kopf.OperatorSettings()).scanning.disabled is False


def test_named_namespaces_turn_the_scanning_off_so_no_cluster_wide_right_is_needed() -> None:
    settings = handlers.configure(kopf.OperatorSettings(), namespaces=["models", "team-a"])
    assert settings.scanning.disabled is True


def test_a_namespace_pattern_keeps_the_scanning_to_find_the_namespaces_it_matches() -> None:
    settings = handlers.configure(kopf.OperatorSettings(), namespaces=["models", "team-*"])
    assert settings.scanning.disabled is False
