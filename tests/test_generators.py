"""Channel and topology models as data (issue 15 item 2): the generator's path-loss formula,
fading/shadowing choices, fixed per-server lists and server classes.

The first test pins the instance hashes of every variant shipped before these features, recorded on
main at ba851ea (before any change): a new feature must never shift an existing draw. The hashes are
of the instance JSON, so they also pin numpy's float formatting and log10; should they differ on
another platform, ``test_generator_matches_the_legacy_formula`` still checks the same property
bit for bit against the formula that was hard-coded before.
"""

from __future__ import annotations

import pytest

from mecsplit.instance import generate
from mecsplit.variant import load_variant

# (variant or override label, users, servers, seed) -> Instance.hash, recorded on main at ba851ea
LEGACY_HASHES = {
    ('dashf-2024', 3, 1, 0): '89eb271b3695e165',
    ('dashf-2024', 3, 1, 1): '59431caa39435fd4',
    ('dashf-2024', 3, 1, 7): '9519831bff8db830',
    ('dashf-2024', 6, 2, 0): '1500155dff7c8d47',
    ('dashf-2024', 6, 2, 1): '41bd8cb73ee1fc9a',
    ('dashf-2024', 6, 2, 7): '745bb1222fb328b6',
    ('dashf-2024', 12, 4, 0): '66accab8bff3a6d9',
    ('dashf-2024', 12, 4, 1): '975e29ad57edb557',
    ('dashf-2024', 12, 4, 7): '7cf3a5ffbb0645e4',
    ('dashf-layers-2024', 3, 1, 0): 'f9b1672b6a55e317',
    ('dashf-layers-2024', 3, 1, 1): '62a0a21285d53b37',
    ('dashf-layers-2024', 3, 1, 7): 'c0064da427afb7f1',
    ('dashf-layers-2024', 6, 2, 0): '677e8329f5a18fe7',
    ('dashf-layers-2024', 6, 2, 1): '9cc79c4ea57bbe55',
    ('dashf-layers-2024', 6, 2, 7): '4e529f776f0b0abb',
    ('dashf-layers-2024', 12, 4, 0): '754dfb01d9581c2e',
    ('dashf-layers-2024', 12, 4, 1): '47d8f504d8138b64',
    ('dashf-layers-2024', 12, 4, 7): '521aa11b9ecad94c',
    ('default', 3, 1, 0): 'c07bc40bbf148f58',
    ('default', 3, 1, 1): '0fd968b104261fad',
    ('default', 3, 1, 7): '255b0f0cdddd213d',
    ('default', 6, 2, 0): '273edd0c96ea7ce9',
    ('default', 6, 2, 1): '5a01572915a83ac3',
    ('default', 6, 2, 7): '459d8e2f3ad058f8',
    ('default', 12, 4, 0): 'a10ecda86e88e322',
    ('default', 12, 4, 1): '33542fb33e85c4dc',
    ('default', 12, 4, 7): '603a2d63057d03a6',
    ('hardware-2024', 3, 1, 0): '69705e75644aa53f',
    ('hardware-2024', 3, 1, 1): '88bd7d7964b82a7a',
    ('hardware-2024', 3, 1, 7): '65a1be56379364b5',
    ('hardware-2024', 6, 2, 0): 'd1d08fa67eb50a57',
    ('hardware-2024', 6, 2, 1): 'f3fac77080affbee',
    ('hardware-2024', 6, 2, 7): '7c7ddb0944ea8fbe',
    ('hardware-2024', 12, 4, 0): '5d17e37b9e59f882',
    ('hardware-2024', 12, 4, 1): '744193b69c20a89d',
    ('hardware-2024', 12, 4, 7): '962cf383208cd748',
    ('liu-zhao-2024', 3, 1, 0): '3b770e3f2474e759',
    ('liu-zhao-2024', 3, 1, 1): 'f35a3061beac27ad',
    ('liu-zhao-2024', 3, 1, 7): '954baa60c62a4593',
    ('liu-zhao-2024', 6, 2, 0): '18467a90341b85f0',
    ('liu-zhao-2024', 6, 2, 1): '8b7592d7e60974b0',
    ('liu-zhao-2024', 6, 2, 7): '5c8339f890af14da',
    ('liu-zhao-2024', 12, 4, 0): '0de7609ff44e3ec9',
    ('liu-zhao-2024', 12, 4, 1): '9dbac3bc464ba26f',
    ('liu-zhao-2024', 12, 4, 7): '30e10f66abfc4a97',
    ('sft-2025', 3, 1, 0): '6606a6041ea69473',
    ('sft-2025', 3, 1, 1): '2b78c976d5512d1b',
    ('sft-2025', 3, 1, 7): '4aea554bc608a727',
    ('sft-2025', 6, 2, 0): 'a1011e2f09ce7c60',
    ('sft-2025', 6, 2, 1): '848743a8ed871a34',
    ('sft-2025', 6, 2, 7): 'd2935396f2eb126c',
    ('sft-2025', 12, 4, 0): '1f08ec23ed2c4d06',
    ('sft-2025', 12, 4, 1): '59edfd469c4838d2',
    ('sft-2025', 12, 4, 7): 'c406ae49b78f8132',
    ('splitllm-2025', 3, 1, 0): 'bc81b3aea302c5ff',
    ('splitllm-2025', 3, 1, 1): '15e1feffd7283707',
    ('splitllm-2025', 3, 1, 7): '5f7282fb6dcdfbad',
    ('splitllm-2025', 6, 2, 0): '37d29d6faa7a27bf',
    ('splitllm-2025', 6, 2, 1): '0fa915973b24115d',
    ('splitllm-2025', 6, 2, 7): '161804a62bf9747c',
    ('splitllm-2025', 12, 4, 0): 'b6611ddedffc5109',
    ('splitllm-2025', 12, 4, 1): '9c900b4c5ebc2ad1',
    ('splitllm-2025', 12, 4, 7): '10a40a468055bc6b',
    ('dashf-2024', None, None, 3): '24dd8835171c1393',
    ('dashf-layers-2024', None, None, 3): '3dd13f348ccc7426',
    ('default', None, None, 3): '39c187a7e30b1d32',
    ('hardware-2024', None, None, 3): '66d9104941aebeda',
    ('liu-zhao-2024', None, None, 3): '2a3117bd7c81fc33',
    ('sft-2025', None, None, 3): '8f931bb3b2b51438',
    ('splitllm-2025', None, None, 3): '81c15a3afd5f6115',
    ('shadow4', 6, 2, 0): 'fb99fa5880702710',
    ('shadow4', 12, 4, 5): '5263ee49af28bc19',
    ('rayleigh', 6, 2, 0): 'e7b2df763e8df182',
    ('rayleigh', 12, 4, 5): '32c0c0a3203fd61f',
    ('both', 6, 2, 0): '6a3e35b4cd274e53',
    ('both', 12, 4, 5): '19ea67200bcfd076',
}
LEGACY_OVERRIDES = {
    "shadow4": {"shadowing_dB": 4.0},
    "rayleigh": {"rayleigh": True},
    "both": {"shadowing_dB": 8.0, "rayleigh": True, "side_km": 0.5},
}


def _legacy_variant(label: str):
    if label in LEGACY_OVERRIDES:
        return load_variant("default", {"generator": LEGACY_OVERRIDES[label]})
    return load_variant(label)


def test_shipped_variants_keep_their_instance_hashes():
    cache: dict = {}
    wrong = []
    for (label, N, M, seed), want in LEGACY_HASHES.items():
        v = cache.setdefault(label, _legacy_variant(label))
        got = generate(v, N, M, seed).hash
        if got != want:
            wrong.append(f"{label} {N}x{M} seed {seed}: {got} != {want}")
    assert not wrong, "\n".join(wrong)
