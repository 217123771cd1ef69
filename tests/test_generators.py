"""Channel and topology models as data (issue 15 item 2): the generator's path-loss formula,
fading/shadowing choices, fixed per-server lists and server classes.

The first test pins the instance hashes of every variant shipped before these features, recorded on
main at ba851ea (before any change): a new feature must never shift an existing draw. The hashes are
of the instance JSON, so they also pin numpy's float formatting and log10; should they differ on
another platform, ``test_generator_matches_the_legacy_formula`` still checks the same property
bit for bit against the formula that was hard-coded before.
"""

from __future__ import annotations

import json
import math
import zlib

import numpy as np
import pytest

from mecsplit.errors import InputError
from mecsplit.generators import DEFAULT_PATH_LOSS, path_loss_dB, path_loss_formula, rician_power, uniform_square
from mecsplit.instance import from_dict, generate
from mecsplit.servers import class_counts, fixed_server_count, server_class_of
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


# --- the same draws, bit for bit, as the formula hard-coded before ---------------------------------

# The C library's log10 and pow, elementwise: what NumPy computed on the machines the hashes above were
# recorded on (CPUs without AVX-512, where NumPy calls them); its AVX-512 kernels differ in the last bit.
_log10 = np.vectorize(math.log10, otypes=[float])
_pow10 = np.vectorize(lambda x: math.pow(10.0, x), otypes=[float])


def _legacy_uniform_square(rng, n_users, n_servers, p):
    """generators.uniform_square as it was on main at ba851ea (copied verbatim, but for np.log10 and
    10 ** x: the C library's, as above)."""
    side = p["side_km"]
    users = rng.uniform(0.0, side, size=(n_users, 2))
    servers = rng.uniform(0.0, side, size=(n_servers, 2))
    d = np.maximum(np.linalg.norm(users[:, None, :] - servers[None, :, :], axis=2), p["min_distance_km"])
    loss = 128.1 + 37.6 * _log10(d)
    if p["shadowing_dB"] > 0:
        loss = loss + rng.normal(0.0, p["shadowing_dB"], size=loss.shape)
    gain = _pow10(-loss / 10)
    if p["rayleigh"]:
        gain = gain * rng.exponential(1.0, size=gain.shape)
    return {"user_xy_km": users, "server_xy_km": servers, "gain": gain}


@pytest.mark.parametrize("label", ["default", "sft-2025", "shadow4", "rayleigh", "both"])
def test_generator_matches_the_legacy_formula(label):
    v = _legacy_variant(label)
    for N, M, seed in ((5, 3, 0), (9, 4, 11)):
        inst = generate(v, N, M, seed)
        old = _legacy_uniform_square(np.random.default_rng([seed, 0]), N, M, v.generator[1])
        for k in ("user_xy_km", "server_xy_km", "gain"):
            assert np.array_equal(inst.topology[k], old[k]), k


def test_default_path_loss_expression_equals_the_hard_coded_formula():
    d = np.geomspace(1e-3, 10.0, 1001)
    assert np.array_equal(path_loss_dB(d), 128.1 + 37.6 * _log10(d))
    assert np.array_equal(path_loss_dB(d, 5.0, path_loss_formula(DEFAULT_PATH_LOSS)), 128.1 + 37.6 * _log10(d))


@pytest.mark.parametrize("spelled", [
    {"path_loss_dB": "128.1+37.6*log10(d_km)"},
    {"path_loss_dB": " 128.1 + 37.6 * log10( d_km ) "},
    {"carrier_GHz": 2},
    {"fading": "none"},
    {"rayleigh": False, "fading": "none"},
    {"rician_K_dB": 3.0},              # unused without fading = "rician"
])
def test_defaults_written_out_keep_the_hash(spelled):
    base = generate(load_variant("default"), 6, 2, 4)
    same = generate(load_variant("default", {"generator": spelled}), 6, 2, 4)
    assert same.to_json() == base.to_json()


def test_rayleigh_old_and_new_spelling_are_the_same_instance():
    a = generate(load_variant("default", {"generator": {"rayleigh": True}}), 6, 2, 4)
    b = generate(load_variant("default", {"generator": {"fading": "rayleigh"}}), 6, 2, 4)
    assert a.to_json() == b.to_json()


def _fading_of(tmp_path, parent_text: str, child_text: str) -> tuple[bool, str]:
    (tmp_path / "parent.toml").write_text('[variant]\nextends = "default"\n[generator]\n' + parent_text)
    (tmp_path / "child.toml").write_text('[variant]\nextends = "parent"\n[generator]\n' + child_text)
    p = load_variant(tmp_path / "child.toml").generator[1]
    return p["rayleigh"], p.get("fading", "none")


@pytest.mark.parametrize("parent, child, want", [
    ('fading = "none"\n', "rayleigh = true\n", (True, "none")),       # an old-style child of a new-style parent
    ("rayleigh = true\n", 'fading = "none"\n', (False, "none")),     # and the other way round
    ("rayleigh = true\n", 'fading = "rician"\n', (False, "rician")),
    ('fading = "rician"\n', "rayleigh = false\n", (False, "none")),
    ('fading = "rician"\n', "shadowing_dB = 2.0\n", (False, "rician")),
])
def test_a_child_overrides_its_parents_fading_in_either_spelling(tmp_path, parent, child, want):
    assert _fading_of(tmp_path, parent, child) == want


# --- path loss -------------------------------------------------------------------------------------

def _distances(inst, min_d=0.01):
    u, s = inst.topology["user_xy_km"], inst.topology["server_xy_km"]
    return np.maximum(np.linalg.norm(u[:, None] - s[None], axis=2), min_d)


def test_path_loss_exponent_changes_gains_as_the_closed_form_says():
    """PL = A + 10 n log10 d  =>  g = 10^(−A/10) d^(−n): exponent 3.0 instead of 3.76 multiplies every
    gain by d^(3.76 − 3.0); the positions do not move (the formula draws nothing)."""
    old = generate(load_variant("default"), 8, 3, 2)
    new = generate(load_variant("default", {"generator": {"path_loss_dB": "128.1 + 30 * log10(d_km)"}}), 8, 3, 2)
    assert np.array_equal(old.topology["user_xy_km"], new.topology["user_xy_km"])
    d = _distances(old)
    np.testing.assert_allclose(new.topology["gain"] / old.topology["gain"], d ** ((37.6 - 30.0) / 10), rtol=1e-12)
    np.testing.assert_allclose(new.topology["gain"], 10 ** (-12.81) * d ** -3.0, rtol=1e-12)


def test_carrier_frequency_enters_through_f_GHz():
    """A free-space-like term 20 log10(f_GHz): moving the carrier from 2 to 3.5 GHz divides every gain
    by (3.5/2)²."""
    formula = {"path_loss_dB": "32.4 + 20 * log10(f_GHz) + 30 * log10(1000 * d_km)"}
    lo = generate(load_variant("default", {"generator": {**formula, "carrier_GHz": 2.0}}), 6, 3, 1)
    hi = generate(load_variant("default", {"generator": {**formula, "carrier_GHz": 3.5}}), 6, 3, 1)
    np.testing.assert_allclose(hi.topology["gain"] / lo.topology["gain"], (2.0 / 3.5) ** 2, rtol=1e-12)
    d = _distances(lo)
    np.testing.assert_allclose(lo.topology["gain"], 10 ** (-(32.4 + 20 * np.log10(2.0)) / 10) * (1000 * d) ** -3.0, rtol=1e-12)


def test_umi_example_is_the_3gpp_formula():
    v = load_variant("default-umi-nlos")
    p = v.generator[1]
    d = np.geomspace(0.01, 1.5, 50)
    want = 35.3 * np.log10(1000 * d) + 22.4 + 21.3 * np.log10(3.5)   # TR 38.901 UMi NLOS, h_UT = 1.5 m
    np.testing.assert_allclose(path_loss_dB(d, p["carrier_GHz"], path_loss_formula(p["path_loss_dB"])), want, rtol=1e-12)
    assert p["shadowing_dB"] == 7.82 and p["rayleigh"] is True


# --- fading ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("K_dB", [-10.0, 0.0, 9.0, 20.0])
def test_rician_power_has_unit_mean_and_the_closed_form_variance(K_dB):
    """|h|² of a Rician fade: E = 1, Var = (1 + 2K)/(1 + K)² (K linear)."""
    K = 10 ** (K_dB / 10)
    x = rician_power(np.random.default_rng(0), (400_000,), K)
    assert x.mean() == pytest.approx(1.0, abs=0.01)
    assert x.var() == pytest.approx((1 + 2 * K) / (1 + K) ** 2, rel=0.03)


def test_rician_draws_from_its_own_stream():
    """Adding Rician fading multiplies the gains by the fade and moves nothing else: positions and
    shadowing are the draws of the variant without fading."""
    plain = generate(load_variant("default", {"generator": {"shadowing_dB": 4.0}}), 7, 3, 5)
    faded = generate(load_variant("default", {"generator": {"shadowing_dB": 4.0, "fading": "rician", "rician_K_dB": 6.0}}), 7, 3, 5)
    assert np.array_equal(plain.topology["user_xy_km"], faded.topology["user_xy_km"])
    ratio = faded.topology["gain"] / plain.topology["gain"]
    ss = np.random.default_rng([5, 0]).bit_generator.seed_seq
    own = np.random.default_rng(np.random.SeedSequence(ss.entropy, spawn_key=(zlib.crc32(b"fading.rician"),)))
    np.testing.assert_allclose(ratio, rician_power(own, (7, 3), 10 ** 0.6), rtol=1e-12)


# --- fixed lists -------------------------------------------------------------------------------------

def test_fixed_server_lists_are_used_verbatim():
    v = load_variant("default-fixed-servers")
    inst = generate(v, 20, 3, 6)
    xy = [[0.5, 0.5], [0.2, 0.8], [0.8, 0.2]]
    assert inst.topology["server_xy_km"].tolist() == xy
    ec, up = inst.block("edge_compute"), inst.block("uplink")
    assert ec["cores"].tolist() == [5120, 2560, 2560] and ec["cores"].dtype.kind == "i"
    assert ec["F_max_GHz"].tolist() == [3.0, 1.2, 1.2] and ec["flops_per_cycle"].tolist() == [2.0, 2.0, 2.0]
    assert up["b_max_MHz"].tolist() == [40.0, 10.0, 10.0]
    # the same users as `default` at this seed (the random server positions are drawn and discarded)
    base = generate(load_variant("default"), 20, 3, 6)
    assert np.array_equal(inst.topology["user_xy_km"], base.topology["user_xy_km"])
    np.testing.assert_allclose(inst.topology["gain"], 10 ** (-(128.1 + 37.6 * np.log10(_distances(inst))) / 10), rtol=1e-12)
    # a reloaded instance file carries the same values
    again = from_dict(json.loads(inst.to_json()), v)
    assert again.block("edge_compute")["F_max_GHz"].tolist() == [3.0, 1.2, 1.2]


def test_fixed_positions_keep_shadowing_draws():
    shadow = {"shadowing_dB": 6.0}
    rnd = generate(load_variant("default", {"generator": shadow}), 5, 2, 3)
    fixed = generate(load_variant("default", {"generator": {**shadow, "server_xy_km": [[0.1, 0.1], [0.9, 0.9]]},
                                              "sizes": {"servers": 2}}), 5, 2, 3)
    shadow_of = lambda inst: -10 * np.log10(inst.topology["gain"]) - (128.1 + 37.6 * np.log10(_distances(inst)))  # noqa: E731
    np.testing.assert_allclose(shadow_of(fixed), shadow_of(rnd), atol=1e-9)
    assert np.std(shadow_of(rnd)) > 1.0


# --- server classes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shares, M, want", [
    ([0.2, 0.8], 10, [2, 8]),
    ([0.2, 0.8], 4, [1, 3]),       # quotas 0.8, 3.2: the remainder goes to the larger fraction
    ([0.2, 0.8], 1, [0, 1]),
    ([0.5, 0.5], 3, [2, 1]),       # tie: the earlier class
    ([0.29, 0.71], 100, [29, 71]),  # 0.29 * 100 = 28.999999999999996 in floating point: counted exactly
    ([0.01, 0.07, 0.92], 20, [0, 2, 18]),  # quotas 0.2, 1.4, 18.4: a tie on 0.4 (float products break it wrongly)
    ([0.01, 0.12, 0.87], 20, [0, 3, 17]),  # quotas 0.2, 2.4, 17.4: the shares as written, not their binary values
    ([0.1, 0.2, 0.7], 7, [1, 1, 5]),  # quotas 0.7, 1.4, 4.9: floors 0, 1, 4; two left -> 0.9, 0.7
    ([1.0], 5, [5]),
])
def test_class_counts_follow_the_largest_remainder_rule(shares, M, want):
    assert class_counts(shares, M) == want
    assert sum(class_counts(shares, M)) == M


@pytest.mark.parametrize("M", [1, 3, 4, 10, 17])
def test_server_classes_produce_their_shares_and_parameters(M):
    v = load_variant("default-server-classes")
    inst = generate(v, 6, M, 8)
    n_macro, n_small = class_counts([0.2, 0.8], M)
    cls = server_class_of(v.generator[1]["server_classes"], M)
    assert cls.tolist() == [0] * n_macro + [1] * n_small
    ec, up = inst.block("edge_compute"), inst.block("uplink")
    macro, small = cls == 0, cls == 1
    assert np.all(ec["cores"][macro] == 5120) and np.all(ec["F_max_GHz"][macro] == 3.0) and np.all(up["b_max_MHz"][macro] == 40.0)
    assert np.all(ec["cores"][small] == 2560) and np.all(up["b_max_MHz"][small] == 10.0)
    f = ec["F_max_GHz"][small]
    assert np.all((1.0 <= f) & (f <= 1.5)) and (n_small < 2 or np.ptp(f) > 0)
    # what no class sets keeps the block's own draw: the same as `default` at this seed
    base = generate(load_variant("default"), 6, M, 8)
    assert np.array_equal(ec["flops_per_cycle"], base.block("edge_compute")["flops_per_cycle"])
    for k in ("user_xy_km", "server_xy_km", "gain"):
        assert np.array_equal(inst.topology[k], base.topology[k])
    for b in ("llm", "user_compute", "stability"):
        assert all(np.array_equal(inst.block(b)[k], base.block(b)[k]) for k in inst.data[b])


def test_class_distribution_draws_from_the_class_stream():
    v = load_variant("default-server-classes")
    inst = generate(v, 4, 10, 3)
    rng = np.random.default_rng([3, zlib.crc32(b"server_class:small")])
    np.testing.assert_array_equal(inst.block("edge_compute")["F_max_GHz"][2:], rng.uniform(1.0, 1.5, 8))


# --- every draw seeded ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["default-umi-nlos", "default-server-classes", "default-fixed-servers"])
def test_new_variants_are_seeded(name):
    v = load_variant(name)
    M = fixed_server_count(v) or 4
    a, b, c = generate(v, 6, M, 21), generate(load_variant(name), 6, M, 21), generate(v, 6, M, 22)
    assert a.to_json() == b.to_json()
    assert a.to_json() != c.to_json()


def test_rician_variant_is_seeded():
    v = load_variant("default", {"generator": {"fading": "rician"}})
    a, b, c = generate(v, 5, 2, 1), generate(v, 5, 2, 1), generate(v, 5, 2, 2)
    assert a.to_json() == b.to_json() != c.to_json()
    assert not np.array_equal(a.topology["gain"], generate(load_variant("default"), 5, 2, 1).topology["gain"])


# --- bad input: one line naming the field ------------------------------------------------------------

BASE = '[variant]\nname = "t"\nextends = "default"\n'
CLASSES = ('[[generator.server_classes]]\nname = "a"\nshare = 0.5\nedge_compute.F_max_GHz = 2.0\n'
           '[[generator.server_classes]]\nname = "b"\nshare = 0.5\n')


@pytest.mark.parametrize("text, field, words", [
    ('[generator]\npath_loss_dB = "d_km * 3"\n', "generator.path_loss_dB", "is in km"),
    ('[generator]\npath_loss_dB = "128 + 37 * log10(d_km) + max_over_users(d_km)"\n', "generator.path_loss_dB", "max_over_users"),
    ('[generator]\npath_loss_dB = "128 + 37 * log10(dist)"\n', "generator.path_loss_dB", "dist"),
    ('[generator]\npath_loss_dB = "__import__(\'os\')"\n', "generator.path_loss_dB", "__import__"),
    ('[generator]\npath_loss_dB = "128 + 37 * log10(d_km - 0.5)"\n', "generator.path_loss_dB", "d_km = 0.01"),
    ('[generator]\npath_loss_dB = 128.1\n', "generator.path_loss_dB", "string"),
    ('[generator]\npath_loss_dB = "128 +* log10(d_km)"\n', "generator.path_loss_dB", "syntax"),
    ('[generator]\ncarrier_GHz = 0\n', "generator.carrier_GHz", "out of range"),
    ('[generator]\nfading = "nakagami"\n', "generator.fading", "rician"),
    ('[generator]\nrayleigh = true\nfading = "none"\n', "generator.rayleigh", "contradicts"),
    ('[generator]\nfading = "rician"\nrician_K_dB = 90\n', "generator.rician_K_dB", "out of range"),
    ('[generator]\nserver_xy_km = [[0.1, 0.2], [0.3]]\n', "generator.server_xy_km[1]", "[0.3]"),
    ('[generator]\nserver_xy_km = [[0.1, 0.2]]\n', "generator.server_xy_km", "sizes.servers = 10"),
    ('[generator]\nserver_xy_km = "centre"\n', "generator.server_xy_km", "centre"),
    ('[blocks.edge_compute]\nF_max_GHz = [1.0, 2.0]\n', "blocks.edge_compute.F_max_GHz", "2 entries"),
    ('[blocks.edge_compute]\nF_max_GHz = [1.0, -2.0]\n', "blocks.edge_compute.F_max_GHz[1]", "out of range"),
    ('[blocks.edge_compute]\ncores = []\n', "blocks.edge_compute.cores", "empty"),
    ('[blocks.uplink]\np_max_W = [1.0, 2.0]\n', "blocks.uplink.p_max_W", "per-user"),
    ('[blocks.uplink]\nnoise_dBm_per_Hz = [1.0, 2.0]\n', "blocks.uplink.noise_dBm_per_Hz", "per-scalar"),
    ('[generator]\nserver_classes = 3\n', "generator.server_classes", "array of tables"),
    (CLASSES.replace("share = 0.5\n", "share = 0.4\n", 1), "generator.server_classes", "sum to 0.9"),
    (CLASSES.replace("share = 0.5\n", "share = 0\n", 1), "generator.server_classes[0].share", "(0, 1]"),
    (CLASSES.replace('name = "b"', 'name = "a"'), "generator.server_classes[1].name", "'a'"),
    (CLASSES + "warp.speed = 9\n", "generator.server_classes[1].warp", "edge_compute.F_max_GHz"),
    (CLASSES + "edge_compute.kappa = 1e-27\n", "generator.server_classes[1].edge_compute.kappa", "per-server"),
    (CLASSES + "edge_compute.F_max_GHz = [1.0, 2.0]\n", "generator.server_classes[1].edge_compute.F_max_GHz", "list"),
    (CLASSES + "edge_compute.F_max_GHz = 0.001\n", "generator.server_classes[1].edge_compute.fe_min_GHz", "fe_min_GHz <= F_max_GHz"),
    (CLASSES + "uplink.b_max_MHz = { dist = \"uniform\", low = 5, high = 1 }\n",
     "generator.server_classes[1].uplink.b_max_MHz.low", "low <= high"),
])
def test_bad_generator_input_is_one_line_naming_the_field(tmp_path, text, field, words):
    path = tmp_path / "t.toml"
    path.write_text(BASE + text)
    with pytest.raises(InputError) as e:
        load_variant(path)
    assert e.value.field == field and e.value.where == str(path)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_generation_refuses_a_formula_without_a_finite_gain():
    """The guard behind the load-time probe: a table that skipped validation still gets one line."""
    p = {**load_variant("default").generator[1], "path_loss_dB": "-5000 + log10(d_km)"}
    with pytest.raises(InputError) as e:
        uniform_square(np.random.default_rng(0), 3, 2, p)
    assert e.value.field == "generator.path_loss_dB" and "-5000" in str(e.value)


def test_list_length_is_checked_at_generation_too(tmp_path):
    v = load_variant("default-fixed-servers")
    with pytest.raises(InputError) as e:
        generate(v, 4, 2, 0)
    assert e.value.field.startswith(("blocks.", "generator.")) and "= 2" in str(e.value)


def test_cli_bad_formula_exits_2_with_one_line(tmp_path, cli):
    path = tmp_path / "t.toml"
    path.write_text(BASE + '[generator]\npath_loss_dB = "d_km * 3"\n')
    r = cli("instance", "--variant", str(path), "--users", "2", "--servers", "1")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "generator.path_loss_dB" in r.stderr and str(path) in r.stderr


def test_cli_blocks_lists_the_generator_parameters(cli):
    r = cli("blocks")
    assert r.returncode == 0
    for key in ("path_loss_dB", "carrier_GHz", "fading", "rician_K_dB", "server_xy_km", "[[generator.server_classes]]", "share"):
        assert key in r.stdout, key


def test_portable_functions_are_numpys_at_the_edges_and_the_c_librarys_inside():
    """Instances are drawn with expr.PORTABLE (the C library's scalar functions): NumPy's values where
    NumPy gives inf, -inf or nan (a formula's guard reads them: _gain_problem), the C library's bits
    elsewhere — whatever SIMD kernels this CPU gives NumPy."""
    from mecsplit.expr import ELEMENTWISE, PORTABLE, portable_power

    edge = np.array([0.0, -0.0, -1.0, np.nan, np.inf, -np.inf, 1e-300, 5.0, 1e3, -1e3, 710.0])
    with np.errstate(all="ignore"):
        for name, f in ELEMENTWISE.items():
            np.testing.assert_allclose(PORTABLE[name](edge), f(edge), rtol=1e-15, equal_nan=True, err_msg=name)
        a = np.array([0.0, -8.0, 10.0, -2.0, 0.0, np.nan, 10.0])
        b = np.array([-1.0, 1 / 3, 400.0, 3.0, 0.0, 1.0, -12.5])
        np.testing.assert_allclose(portable_power(a, b), np.power(a, b), rtol=1e-15, equal_nan=True)
    x = np.geomspace(1e-3, 700.0, 101)
    for name in ("log", "log2", "log10", "exp"):
        assert np.array_equal(PORTABLE[name](x), [getattr(math, name)(v) for v in x]), name
    assert np.array_equal(portable_power(10.0, -x), [math.pow(10.0, -v) for v in x])
