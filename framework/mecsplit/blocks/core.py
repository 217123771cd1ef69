"""The blocks of the core problem (Liu & Zhao, MobiHoc 2024; spec ``seed-models.md`` §1).

Equation numbers refer to the paper as restored in the spec. Model units: TFLOP, GHz, MHz, Mbit,
W, s, J (see :mod:`mecsplit.blocks.base`).
"""

from __future__ import annotations

import math

import numpy as np

from ..lazy import lazy_module
from ..slots import ix, per_server_sum, per_slot, sets
from .base import Block, Ledger, Param, VarSpec, Violations, quantity

pyo = lazy_module("pyomo.environ")  # imported on first use: listing variants needs no Pyomo

LN2 = math.log(2.0)


def _pair_sum(m, n, expr_of_m):
    """Σ_m χ[n,m]·expr(m) — the association-weighted per-user term of eqs. (3), (7)."""
    return sum(m.chi[n, j] * expr_of_m(j) for j in m.S)


class LLM(Block):
    name = "llm"
    doc = ("The model being fine-tuned and the split decision α_n (number of first layers trained on "
           "the device). ψ(d) = 72·B·d·h² + 12·B·d²·h FLOP per layer per iteration (spec §1.2).")
    params = (
        Param("layers", "layer", 32, "Υ, transformer layers (LLaMA-7B: 32)", min=2, max=1000, integer=True),
        Param("batch", "sequence", 512, "B, batch size", min=1, max=1e6, integer=True),
        Param("hidden", "1", 1024, "h, hidden dimension used in ψ (the paper uses 1024)", min=1, max=1e6, integer=True),
        Param("tokens", "token", {"dist": "uniform_int", "low": 512, "high": 1024},
              "d_n, input tokens per sequence", per="user", min=1, max=1e7, integer=True),
        Param("bits_per_element", "bit", 16, "bits per activation element (upload = activations)", min=1, max=64, integer=True),
        Param("split", "1", "integer", "α integer (the MINLP) or continuous (an offloading ratio)",
              choices=("integer", "continuous")),
        Param("alpha_min", "layer", 1, "smallest split α_n (9a)", min=0, max=1000),
    )
    ordered = (("alpha_min", "layers"),)

    def derive(self, inst):
        d = inst.block("llm")["tokens"].astype(float)
        B, h = float(self.p["batch"]), float(self.p["hidden"])
        return {"psi_TFLOP": (72 * B * d * h**2 + 12 * B * d**2 * h) / 1e12,
                "activations_Mbit": B * d * h * self.p["bits_per_element"] / 1e6}

    def variables(self, inst):
        return [VarSpec("alpha", "layer", "α_n, layers trained on the device", integer=self.p["split"] == "integer")]

    def reference(self, inst, sol):
        sol["alpha"] = np.full(inst.N, float(min(max(self.p["layers"] // 2, self.p["alpha_min"]), self.alpha_max(inst))))

    def alpha_max(self, inst) -> float:
        return float(self.p["layers"]) - (1.0 if inst.has_block("stability") else 0.0)

    def alpha_bounds(self, inst):
        return float(self.p["alpha_min"]), float(self.p["layers"])

    def build(self, m, inst, ledger):
        dom = pyo.Integers if self.p["split"] == "integer" else pyo.Reals
        c = inst.compiled   # per-user bounds from every block (stability, split_bounds, memory, ...)
        m.alpha = pyo.Var(m.U, domain=dom, bounds=lambda m, n: (float(c.alpha_lo[n]), float(c.alpha_hi[n])),
                          initialize=lambda m, n: float(c.alpha_lo[n]))

    def evaluate(self, sol, inst, ledger, viol):
        a = sol["alpha"]
        viol.add("alpha_bounds", np.maximum(self.p["alpha_min"] - a, a - self.alpha_max(inst)))
        if self.p["split"] == "integer":
            viol.add("alpha_integer", np.abs(a - np.rint(a)))


class Association(Block):
    name = "association"
    doc = "χ_{n,m} ∈ {0,1}, Σ_m χ_{n,m} = 1 (9b, 9c): every user is served by exactly one edge server."

    def variables(self, inst):
        return [VarSpec("server", "index", "m(n), index of the user's edge server", integer=True, component="chi")]

    def reference(self, inst, sol):
        sol["server"] = np.argmax(inst.topology["gain"], axis=1)

    def build(self, m, inst, ledger):
        m.chi = pyo.Var(m.U, m.S, domain=pyo.Binary, initialize=0)
        m.one_server = pyo.Constraint(m.U, rule=lambda m, n: sum(m.chi[n, j] for j in m.S) == 1)

    def evaluate(self, sol, inst, ledger, viol):
        s = sol["server"]
        bad = (s != np.rint(s)) | (s < 0) | (s > inst.M - 1)
        viol.add("server_index", np.where(bad, np.inf, 0.0))


class UserCompute(Block):
    name = "user_compute"
    requires = ("llm",)
    doc = ("Local training of α_n layers on the user's GPU: T = α ψ/(f C D) (1), "
           "E = α κ₁ f² ψ/(C D) (2); f_n ≤ f_max (9f).")
    params = (
        Param("cores", "core", {"dist": "uniform_int", "low": 4, "high": 6}, "C^U_n, GPU cores (Apple A15: 4-6)", per="user", min=1, max=1e7, integer=True),
        Param("flops_per_cycle", "FLOP/cycle/core", 1.0, "D^U_n", per="user", min=1e-6, max=1e6),
        Param("f_max_GHz", "GHz", {"dist": "uniform", "low": 0.5, "high": 1.0}, "f^max_n (9f)", per="user", min=1e-6, max=1e3),
        Param("f_min_GHz", "GHz", 0.05, "lowest GPU frequency (positivity; not in the paper)", min=1e-6, max=1e3),
        Param("kappa", "W/(cycle/s)^3", 1e-28, "κ₁, power = κ₁ f³ (not given by the paper; usual MEC value)", min=0, max=1e-20),
    )
    ordered = (("f_min_GHz", "f_max_GHz"),)

    def derive(self, inst):
        """t_layer (N,) s·GHz and e_layer (N,) J/GHz²: T = α·t/f and E = α·e·f² (eqs. 1, 2)."""
        d, psi = inst.block(self.name), inst.block("llm")["psi_TFLOP"]
        cd = d["cores"] * d["flops_per_cycle"]
        # T per layer = ψ·1e12 / (f·1e9·C·D) s ; E per layer = κ·(f·1e9)²·ψ·1e12/(C·D) J
        return {"t_layer": psi * 1e3 / cd, "e_layer": self.p["kappa"] * 1e30 * psi / cd}

    def per_layer(self, inst):
        """(t_layer [s·GHz], e_layer [J/GHz²]), shape (N,), from the compiled instance."""
        d = inst.block(self.name)
        return d["t_layer"], d["e_layer"]

    def quantities(self):
        return (quantity("user_compute_delay_s", "s", "local training time α·t/f (1)"),
                quantity("user_compute_energy_J", "J", "local training energy α·e·f² (2)"))

    def variables(self, inst):
        return [VarSpec("f_GHz", "GHz", "f_n, user GPU frequency", component="f")]

    def reference(self, inst, sol):
        sol["f_GHz"] = inst.block(self.name)["f_max_GHz"].astype(float)

    def build(self, m, inst, ledger):
        d = inst.block(self.name)
        m.f = pyo.Var(m.U, bounds=lambda m, n: (self.p["f_min_GHz"], float(d["f_max_GHz"][n])),
                      initialize=lambda m, n: float(d["f_max_GHz"][n]))
        t, e = self.per_layer(inst)
        ledger.delay["user_compute"] = [m.alpha[n] * float(t[n]) / m.f[n] for n in m.U]
        ledger.energy["user_compute"] = [m.alpha[n] * float(e[n]) * m.f[n] ** 2 for n in m.U]
        ledger.quantities.update(user_compute_delay_s=ledger.delay["user_compute"],
                                 user_compute_energy_J=ledger.energy["user_compute"])

    def evaluate(self, sol, inst, ledger, viol):
        d = inst.block(self.name)
        f, a = sol["f_GHz"], sol["alpha"]
        t, e = self.per_layer(inst)
        ledger.delay["user_compute"] = a * t / f
        ledger.energy["user_compute"] = a * e * f**2
        ledger.quantities.update(user_compute_delay_s=ledger.delay["user_compute"],
                                 user_compute_energy_J=ledger.energy["user_compute"])
        viol.leq("f_max", f, d["f_max_GHz"])
        viol.add("f_min", (self.p["f_min_GHz"] - f) / self.p["f_min_GHz"])


class EdgeCompute(Block):
    name = "edge_compute"
    requires = ("llm", "association")
    doc = ("Training of the remaining Υ−α_n layers on the associated server with a GPU-frequency "
           "share f_{n,m}: T = (Υ−α) ψ/(f_{n,m} C^E D^E) (5), E = (Υ−α) κ₂ f_{n,m}² ψ/(C^E D^E) (6); "
           "budget Σ_n χ f_{n,m} (= or ≤) f^max_m (9g).")
    params = (
        Param("cores", "core", {"dist": "uniform_int", "low": 2560, "high": 5120}, "C^E_m (T4/V100)", per="server", min=1, max=1e8, integer=True),
        Param("flops_per_cycle", "FLOP/cycle/core", {"dist": "uniform", "low": 1.0, "high": 2.0}, "D^E_m", per="server", min=1e-6, max=1e6),
        Param("F_max_GHz", "GHz", {"dist": "uniform", "low": 1.0, "high": 3.0}, "f^max_m, the server's GPU-frequency budget", per="server", min=1e-6, max=1e4),
        Param("fe_min_GHz", "GHz", 0.01, "smallest share a served user gets (positivity; not in the paper)", min=1e-9, max=1e3),
        Param("kappa", "W/(cycle/s)^3", 1e-28, "κ₂ (not given by the paper)", min=0, max=1e-20),
        Param("budget", "1", "eq", "'eq' as in the paper (9g), or 'le'", choices=("eq", "le")),
    )
    ordered = (("fe_min_GHz", "F_max_GHz"),)

    def derive(self, inst):
        """t_layer (N, M) s·GHz and e_layer (N, M) J/GHz²: T = (Υ−α)·t/f_e, E = (Υ−α)·e·f_e² (eqs. 5, 6)."""
        d, psi = inst.block(self.name), inst.block("llm")["psi_TFLOP"]
        cd = d["cores"] * d["flops_per_cycle"]  # (M,)
        return {"t_layer": psi[:, None] * 1e3 / cd[None, :], "e_layer": self.p["kappa"] * 1e30 * psi[:, None] / cd[None, :]}

    def per_layer(self, inst):
        """(t_layer [s·GHz], e_layer [J/GHz²]), shape (N, M), from the compiled instance."""
        d = inst.block(self.name)
        return d["t_layer"], d["e_layer"]

    def quantities(self):
        return (quantity(f"{self.name}_delay_s", "s", "training time at the edge server (5)"),
                quantity(f"{self.name}_energy_J", "J", "training energy at the edge server (6)"))

    def variables(self, inst):
        # small timescale with slots: the server re-splits its GPU every slot, as it re-splits its spectrum
        # (docs/sft.md §1: one scheduler sees the slot's uploads; a fixed share would couple the slots)
        return [VarSpec("fe_GHz", "GHz", "f_{n,m(n)}, GPU-frequency share of the user's server", component="fe", pair=True,
                        slot=True)]

    def reference(self, inst, sol):
        s = sol["server"]
        sol["fe_GHz"] = inst.block(self.name)["F_max_GHz"][s] / np.bincount(s, minlength=inst.M)[s]

    def edge_layers(self, m, inst, n):
        """Layers trained at the edge for user n (Pyomo expression): Υ − α_n."""
        return float(inst.block("llm")["layers"]) - m.alpha[n]

    def edge_layers_value(self, sol, inst):
        """The same in numpy."""
        return float(inst.block("llm")["layers"]) - sol["alpha"]

    def build(self, m, inst, ledger):
        d = inst.block(self.name)
        m.fe = pyo.Var(*sets(m, inst, m.U, m.S), bounds=lambda m, n, j, *_: (self.p["fe_min_GHz"], float(d["F_max_GHz"][j])),
                       initialize=lambda m, n, j, *_: max(self.p["fe_min_GHz"], float(d["F_max_GHz"][j]) / max(1, inst.N // inst.M)))
        t, e = self.per_layer(inst)
        fe = lambda n, j, k: m.fe[ix(inst, n, j, t=k)]   # noqa: E731  (k: the slot)
        ledger.delay["edge_compute"] = [per_slot(inst, lambda k: _pair_sum(
            m, n, lambda j: self.edge_layers(m, inst, n) * float(t[n, j]) / fe(n, j, k))) for n in m.U]
        ledger.energy["edge_compute"] = [per_slot(inst, lambda k: _pair_sum(
            m, n, lambda j: self.edge_layers(m, inst, n) * float(e[n, j]) * fe(n, j, k) ** 2)) for n in m.U]
        ledger.quantities[f"{self.name}_delay_s"] = ledger.delay["edge_compute"]
        ledger.quantities[f"{self.name}_energy_J"] = ledger.energy["edge_compute"]
        F = d["F_max_GHz"]
        used = lambda j, k: sum(m.chi[n, j] * fe(n, j, k[0] if k else 0) for n in m.U)   # noqa: E731  (k: () or (slot,))
        if self.p["budget"] == "eq":
            rule = lambda m, j, *k: used(j, k) == float(F[j])
        else:
            rule = lambda m, j, *k: used(j, k) <= float(F[j])
        m.edge_freq_budget = pyo.Constraint(*sets(m, inst, m.S), rule=rule)

    def evaluate(self, sol, inst, ledger, viol):
        d = inst.block(self.name)
        s, fe, k = inst.servers_of(sol), sol["fe_GHz"], self.edge_layers_value(sol, inst)
        t, e = self.per_layer(inst)
        rows = np.arange(inst.N)
        ledger.delay["edge_compute"] = k * t[rows, s] / fe
        ledger.energy["edge_compute"] = k * e[rows, s] * fe**2
        ledger.quantities[f"{self.name}_delay_s"] = ledger.delay["edge_compute"]
        ledger.quantities[f"{self.name}_energy_J"] = ledger.energy["edge_compute"]
        used = per_server_sum(s, fe, inst.M)
        (viol.eq if self.p["budget"] == "eq" else viol.leq)("edge_freq_budget", used, d["F_max_GHz"])
        viol.leq("fe_max", fe, d["F_max_GHz"][s])
        viol.add("fe_min", (self.p["fe_min_GHz"] - fe) / self.p["fe_min_GHz"])


class Uplink(Block):
    name = "uplink"
    requires = ("llm", "association")
    doc = ("FDMA uplink: r_{n,m} = b log2(1 + g p/(σ² b)); energy p s/r (3) always, delay s/r when "
           "'delay = true' (not in the paper's objective; design-notes §3.1); p ≤ p_max (9d); "
           "budget Σ_n χ b_{n,m} (= or ≤) b^max_m (9e). Upload s: the paper's algorithm uses s = d_n "
           "bits ('tokens'); 'activations' sends B·d·h elements.")
    params = (
        Param("p_max_W", "W", {"dist": "uniform", "low": 1.0, "high": 2.0}, "p^max_n (9d)", per="user", min=1e-9, max=1e3),
        Param("p_min_W", "W", 0.0, "transmit-power floor; needed when the delay term is off (design-notes §3.1)", min=0, max=1e3),
        Param("b_max_MHz", "MHz", 20.0, "b^max_m, the server's bandwidth budget", per="server", min=1e-9, max=1e6),
        Param("b_min_MHz", "MHz", 1e-3, "smallest bandwidth a served user gets (positivity; not in the paper)", min=1e-12, max=1e6),
        Param("noise_dBm_per_Hz", "dBm/Hz", -134.0, "σ² as a PSD: the paper's '-134 dBm' (spec §1.11)", min=-250, max=0),
        Param("upload", "1", "tokens", "upload size s_n: 'tokens' (s = d_n bits, the paper's algorithm), 'activations', "
              "or 'external' (another block, e.g. compression, owns the upload delay/energy terms and uses m.rate)",
              choices=("tokens", "activations", "external")),
        Param("delay", "1", False, "add the uplink delay s/r to the delay ledger"),
        Param("budget", "1", "eq", "'eq' as in the paper (9e), or 'le'", choices=("eq", "le")),
    )
    ordered = (("p_min_W", "p_max_W"), ("b_min_MHz", "b_max_MHz"))

    def derive(self, inst):
        sigma2_W_per_Hz = 10 ** (self.p["noise_dBm_per_Hz"] / 10) * 1e-3
        llm = inst.block("llm")
        if self.p["upload"] == "external":  # the owning block adds s/r and p·s/r itself
            s = np.zeros(inst.N)
        else:
            s = llm["tokens"] * 1e-6 if self.p["upload"] == "tokens" else llm["activations_Mbit"]
        # g·p/(σ²·b[Hz]) = snr·p/b[MHz] with snr = g/(σ²·1e6)
        out = {"snr_per_W_MHz": inst.topology["gain"] / (sigma2_W_per_Hz * 1e6), "upload_Mbit": np.asarray(s, float)}
        if inst.T > 1:   # (T, N, M) per small-timescale slot (mecsplit.slots)
            out["snr_slots_per_W_MHz"] = inst.slot_gain / (sigma2_W_per_Hz * 1e6)
        return out

    def snr(self, inst, server: np.ndarray) -> np.ndarray:
        """g/(σ²·1e6) of each user at its server, per W and MHz: (N,), or (T, N) with T > 1 slots."""
        d, rows = inst.block(self.name), np.arange(inst.N)
        return d["snr_per_W_MHz"][rows, server] if inst.T == 1 else d["snr_slots_per_W_MHz"][:, rows, server]

    def snr_table(self, inst, t: int) -> np.ndarray:
        """(N, M) snr per W and MHz of slot t (the static table when T = 1)."""
        d = inst.block(self.name)
        return d["snr_per_W_MHz"] if inst.T == 1 else d["snr_slots_per_W_MHz"][t]

    def quantities(self):
        return (quantity("rate_Mbps", "Mbit/s", "achieved uplink rate b·log2(1 + g·p/(σ²·b))"),
                quantity("upload_Mbit", "Mbit", "data uploaded per round (compressed size with 'compression')"),
                quantity("uplink_delay_s", "s", "upload time upload/rate (counted in delay_s only when delay = true)"),
                quantity("uplink_energy_J", "J", "upload energy p·upload/rate (3)"))

    def variables(self, inst):
        return [VarSpec("p_W", "W", "p_n, transmit power", component="p", slot=True),
                VarSpec("b_MHz", "MHz", "b_{n,m(n)}, bandwidth from the user's server", component="b", pair=True, slot=True)]

    def reference(self, inst, sol):
        d, s = inst.block(self.name), sol["server"]
        sol["p_W"] = d["p_max_W"].astype(float)
        sol["b_MHz"] = d["b_max_MHz"][s] / np.bincount(s, minlength=inst.M)[s]

    def build(self, m, inst, ledger):
        d = inst.block(self.name)
        m.p = pyo.Var(*sets(m, inst, m.U), bounds=lambda m, n, *_: (self.p["p_min_W"], float(d["p_max_W"][n])),
                      initialize=lambda m, n, *_: float(d["p_max_W"][n]))
        m.b = pyo.Var(*sets(m, inst, m.U, m.S), bounds=lambda m, n, j, *_: (self.p["b_min_MHz"], float(d["b_max_MHz"][j])),
                      initialize=lambda m, n, j, *_: float(d["b_max_MHz"][j]) / max(1, -(-inst.N // inst.M)))
        s = d["upload_Mbit"]
        a = [self.snr_table(inst, t) for t in range(inst.T)]

        def rate(n, j, t=0):  # Mbit/s in slot t
            b, p = m.b[ix(inst, n, j, t=t)], m.p[ix(inst, n, t=t)]
            return b * pyo.log(1 + float(a[t][n, j]) * p / b) / LN2

        m.rate = pyo.Expression(*sets(m, inst, m.U, m.S), rule=lambda m, n, j, *t: rate(n, j, *t))
        up_s = [per_slot(inst, lambda t: _pair_sum(m, n, lambda j: float(s[n]) / m.rate[ix(inst, n, j, t=t)])) for n in m.U]
        up_e = [per_slot(inst, lambda t: _pair_sum(m, n, lambda j: float(s[n]) * m.p[ix(inst, n, t=t)] / m.rate[ix(inst, n, j, t=t)]))
                for n in m.U]
        if self.p["upload"] != "external":
            ledger.energy["uplink"] = up_e
        if self.p["delay"] and self.p["upload"] != "external":
            ledger.delay["uplink"] = up_s
        ledger.quantities.update(rate_Mbps=[per_slot(inst, lambda t: _pair_sum(m, n, lambda j: m.rate[ix(inst, n, j, t=t)]))
                                            for n in m.U],
                                 upload_Mbit=[float(x) for x in s], uplink_delay_s=up_s, uplink_energy_J=up_e)
        B = d["b_max_MHz"]
        used = lambda j, t: sum(m.chi[n, j] * m.b[ix(inst, n, j, t=t[0] if t else 0)] for n in m.U)  # noqa: E731  (t: () or (slot,))
        if self.p["budget"] == "eq":
            rule = lambda m, j, *t: used(j, t) == float(B[j])
        else:
            rule = lambda m, j, *t: used(j, t) <= float(B[j])
        m.bandwidth_budget = pyo.Constraint(*sets(m, inst, m.S), rule=rule)

    def evaluate(self, sol, inst, ledger, viol):
        d = inst.block(self.name)
        s_idx, p, b = inst.servers_of(sol), sol["p_W"], sol["b_MHz"]
        a = self.snr(inst, s_idx)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = b * np.log2(1 + a * p / b)
            t = d["upload_Mbit"] / r
        if self.p["upload"] != "external":
            ledger.energy["uplink"] = p * t
        if self.p["delay"] and self.p["upload"] != "external":
            ledger.delay["uplink"] = t
        ledger.quantities.update(rate_Mbps=r, upload_Mbit=np.asarray(d["upload_Mbit"], float), uplink_delay_s=t,
                                 uplink_energy_J=p * t)
        used = per_server_sum(s_idx, b, inst.M)
        (viol.eq if self.p["budget"] == "eq" else viol.leq)("bandwidth_budget", used, d["b_max_MHz"])
        viol.leq("p_max", p, d["p_max_W"])
        # p must be > 0 whenever something is uploaded (rate 0 otherwise), whatever the tolerance
        viol.add("p_min", self.p["p_min_W"] - p if self.p["p_min_W"] > 0 else np.where(p > 0, 0.0, np.inf))
        viol.add("rate_positive", np.where((r > 0) | (d["upload_Mbit"] <= 0), 0.0, np.inf))
        viol.add("b_min", (self.p["b_min_MHz"] - b) / self.p["b_min_MHz"])


class Stability(Block):
    name = "stability"
    requires = ("llm",)
    doc = ("Average-replace-one stability bound of partial fine-tuning (Theorem 1, eq. 10): "
           "AS_n = 2L²/(k_n (1 − α_n/Υ)); requires α_n ≤ Υ−1 (infinite at α_n = Υ).")
    params = (
        Param("lipschitz", "1", 1.0, "L, Lipschitz constant of the loss (not given; only ω_s·2L²/k matters)", min=1e-12, max=1e12),
        Param("samples", "sample", {"dist": "uniform_int", "low": 100, "high": 1000}, "k_n, local training-set size (not given)", per="user", min=1, max=1e12, integer=True),
    )

    def derive(self, inst):
        """c (N,): AS_n = c_n / (1 − α_n/Υ), c_n = 2L²/k_n (eq. 10)."""
        return {"c": 2 * self.p["lipschitz"] ** 2 / inst.block(self.name)["samples"]}

    def alpha_bounds(self, inst):
        return -np.inf, float(inst.block("llm")["layers"]) - 1.0   # AS is infinite at α = Υ

    def _c(self, inst):
        return inst.block(self.name)["c"]

    def build(self, m, inst, ledger):
        Y, c = float(inst.block("llm")["layers"]), self._c(inst)
        ledger.stability["stability"] = [float(c[n]) / (1 - m.alpha[n] / Y) for n in m.U]

    def evaluate(self, sol, inst, ledger, viol):
        Y, c = float(inst.block("llm")["layers"]), self._c(inst)
        with np.errstate(divide="ignore"):
            ledger.stability["stability"] = np.where(sol["alpha"] < Y, c / (1 - sol["alpha"] / Y), np.inf)


BLOCKS = (LLM, Association, UserCompute, EdgeCompute, Uplink, Stability)
