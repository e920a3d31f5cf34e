"""The fuzzer: properties of the implementations, the campaigns that run them, the corpus their findings go to.

* :mod:`.property` -- the protocol (:class:`~.property.Property`, :class:`~.property.Context`,
  :class:`~.property.Finding`, :class:`~.property.PropertyFailure`) and the property names
  (``RELOCATION = "P1"`` .. ``RELOCATION_INPUTS = "P8"``, :data:`~.property.ALIASES`);
* the properties, by what they test: :mod:`.relocation` (P1), :mod:`.roundtrip` (P2),
  :mod:`.differential` (P3), :mod:`.acceptance` (P4), :mod:`.robustness` (P5), :mod:`.format2026`
  (P6, name-sorted splits; also the multi-level distill check run from pytest), :mod:`.guest_loader`
  (P7, the kernel's module loader through ``kernel-vm``), :mod:`.reloc_inputs` (P8, mutated
  relocation inputs), over the shared :mod:`.helpers`; :mod:`.registry` names them
  (:func:`~.registry.get_property`);
* :mod:`.campaign` -- :func:`~.campaign.run_campaign` (a package, by job); :mod:`.groups` -- one
  finding group per root cause; :mod:`.report` renders its result;
* :mod:`.corpus` -- the regression corpus: entries, their replay, and the finding writer's target
  (:mod:`.schema` checks manifests against `corpus/schema.json`).

Public API: the submodules in :data:`__all__` (import what you need from them).
"""

__all__ = ["acceptance", "campaign", "corpus", "differential", "format2026", "groups", "helpers", "property",
           "registry", "reloc_inputs", "relocation", "report", "robustness", "roundtrip", "schema"]
