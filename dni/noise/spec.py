"""The noise-spec language: parse ``weight_read``, ``programming(sigma=0.02)+adc(bits=8,bound=10)`` or JSON
into a :class:`NoiseSpec` of kinds (:mod:`dni.noise.kinds`), with its canonical label and CRC.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field, fields, replace

from dni.errors import InvalidNoiseSpecError
from dni.noise.catalogue import PAPER
from dni.noise.kinds import KINDS, Kind, _Quantiser, _SigmaKind
from dni.util.validation import validate_sigma


@dataclass(frozen=True)
class NoiseSpec:
    """An ordered set of kinds (the tile order), at most one of each. ``label`` is its canonical text."""

    kinds: tuple[Kind, ...] = field(default_factory=tuple)

    def __post_init__(self):
        names = [k.name for k in self.kinds]
        if len(set(names)) != len(names):
            raise InvalidNoiseSpecError(f"noise spec names a kind twice: {'+'.join(names)}; give each kind once")
        object.__setattr__(self, "kinds", tuple(sorted(self.kinds, key=lambda k: k.order)))

    @property
    def label(self) -> str:
        return "+".join(k.label() for k in self.kinds) or "none"

    def __str__(self) -> str:
        return self.label

    def to_json(self) -> str:
        return json.dumps([{"kind": k.name, **k.params()} for k in self.kinds])

    @property
    def scaled(self) -> bool:
        """Whether the grid's σ sets a strength here (some σ-kind without its own σ)."""
        return any(isinstance(k, _SigmaKind) and k.sigma is None for k in self.kinds)

    def at(self, sigma) -> "NoiseSpec":
        """This spec with the grid's σ in every σ-kind that has none of its own."""
        sigma = validate_sigma(sigma)
        return NoiseSpec(tuple(replace(k, sigma=sigma) if isinstance(k, _SigmaKind) and k.sigma is None else k for k in self.kinds))

    @property
    def is_paper(self) -> bool:
        return self.label == PAPER


def parse_noise(text) -> NoiseSpec:
    """A :class:`NoiseSpec` from a label (``weight_read``, ``programming(sigma=0.02)+adc(bits=8,bound=10)``),
    a JSON object or list (``{"kind": "adc", "bits": 8, "bound": 10}``), a dict/list of dicts, or a spec."""
    if isinstance(text, NoiseSpec):
        return text
    if isinstance(text, (dict, list)):
        items = text if isinstance(text, list) else [text]
    else:
        text = str(text).strip()
        if not text:
            raise InvalidNoiseSpecError(f"noise spec is empty; give a kind: {', '.join(KINDS)}")
        if text[0] in "[{":
            try:
                loaded = json.loads(text, object_pairs_hook=lambda pairs: _no_repeats(pairs, text))
            except json.JSONDecodeError as err:
                raise InvalidNoiseSpecError(f"noise spec {text!r} is not valid JSON ({err.msg} at column {err.colno}); "
                                            'e.g. {"kind": "adc", "bits": 8, "bound": 10}') from None
            items = loaded if isinstance(loaded, list) else [loaded]
        else:
            items = [_parse_label_part(part, text) for part in re.split(r"\+(?![^()]*\))", text)]  # "+" outside (…)
    if not items:  # '[]': a spec of no kind (issue 36)
        raise InvalidNoiseSpecError(f"noise spec {text!r} lists no kind; give one: {', '.join(KINDS)}")
    return NoiseSpec(tuple(_kind_from_dict(item) for item in items))


def _no_repeats(pairs, whole: str) -> dict:
    """A JSON object of ``pairs``, refusing a key given twice (json would keep the last silently)."""
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise InvalidNoiseSpecError(f"noise spec {whole!r} gives {', '.join(twice)} twice; give each setting once")
    return dict(pairs)


_PART = re.compile(r"^\s*([a-z_]+)\s*(?:\((.*)\))?\s*$")


def _parse_label_part(part: str, whole: str) -> dict:
    match = _PART.match(part)
    if not match:
        raise InvalidNoiseSpecError(f"cannot read {part!r} in noise spec {whole!r}; write kind or kind(name=value,...), "
                                    f"e.g. adc(bits=8,bound=10)")
    item = {"kind": match.group(1)}
    for assignment in filter(None, (match.group(2) or "").split(",")):
        name, _, value = assignment.partition("=")
        if not _:
            raise InvalidNoiseSpecError(f"cannot read {assignment!r} in noise spec {whole!r}; write name=value")
        if name.strip() in item:  # additive(sigma=0.1,sigma=0.2): not "the last wins" (issue 36)
            raise InvalidNoiseSpecError(f"noise spec {whole!r} gives {name.strip()} twice; give each setting once")
        try:
            item[name.strip()] = json.loads(value.strip())
        except json.JSONDecodeError:
            raise InvalidNoiseSpecError(f"{name.strip()}={value.strip()!r} in noise spec {whole!r} is not a number") from None
    return item


def _kind_from_dict(item) -> Kind:
    if not isinstance(item, dict) or "kind" not in item:
        raise InvalidNoiseSpecError(f"each noise kind needs a \"kind\" entry, got {item!r}; kinds: {', '.join(KINDS)}")
    name = item["kind"]
    if name not in KINDS:
        raise InvalidNoiseSpecError(f"unknown noise kind {name!r}; choose one of: {', '.join(KINDS)}")
    cls = KINDS[name]
    allowed = {f.name for f in fields(cls)}
    extra = sorted(set(item) - allowed - {"kind"})
    if extra:
        raise InvalidNoiseSpecError(f"noise kind {name!r} takes {', '.join(sorted(allowed)) or 'no settings'}, not {', '.join(extra)}")
    if issubclass(cls, _Quantiser):
        missing = [k for k in ("bits", "bound") if item.get(k) is None]
        if missing:
            raise InvalidNoiseSpecError(f"noise kind {name!r} needs {' and '.join(missing)}, e.g. {name}(bits=8,bound=10)")
    return cls(**{k: v for k, v in item.items() if k != "kind"})


def spec_crc(spec: NoiseSpec) -> int:
    """A stable number for seeding from a spec's label."""
    return zlib.crc32(spec.label.encode())


def check_strength_grid(spec, sigmas, flag: str = "--sigma-val") -> None:
    """Refuse a grid of σ values for a spec that has no strength for them to set (every kind fixes its
    own σ, or quantises only): each point would repeat the same evaluation, a meaningless grid."""
    spec = parse_noise(spec)
    if len(set(sigmas)) > 1 and not spec.scaled:
        raise InvalidNoiseSpecError(f"noise {spec.label} has no strength for {flag} to set (its kinds fix their own); "
                                    f"every σ of {', '.join(f'{s:g}' for s in sigmas)} would give the same result: give one value, "
                                    "or leave sigma out of a σ-kind (e.g. weight_read instead of weight_read(sigma=0.05))")
