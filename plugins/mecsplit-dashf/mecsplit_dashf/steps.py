"""The reusable pieces of DASHF, registered as steps (``registry.add_step``).

* :func:`dinkelbach` (kind "outer") — min N(x)/D(x), D > 0: λ_k = N(x_k)/D(x_k), x_{k+1} from an
  inner solver of min N − λ_k D started at x_k, F(λ_k) = N(x_{k+1}) − λ_k D(x_{k+1}); stops at
  |F| ≤ tol·N. With an exact inner solver F(λ_k) → 0 superlinearly and λ_k decreases monotonically
  (Dinkelbach 1967); with an inner solver that never worsens its start, F(λ_k) ≤ 0 and λ_k is
  still monotone.
* :func:`hungarian_slots` (kind "association") — min Σ_n cost[n, m(n)] s.t. at most cap_m users per
  server m: the Hungarian method (``scipy.optimize.linear_sum_assignment``) on cap_m copies
  ("slots") of every server. Exact for this capacitated assignment.
* :func:`sdr_association` (kind "association") — block 1 of DASHF: association χ and offloading α as
  a QCQP in w = [χ; α] (χ² = χ, Σ_m χ = 1, Σ_n χ ≤ cap, α box; bilinear χα cost), homogenised
  and lifted to Z = [w;1][w;1]ᵀ, rank-1 dropped (SDR), solved by CVXPY (Clarabel, or SCS), then
  rounded by Gaussian randomisation + :func:`hungarian_slots`, α re-optimised per user.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from mecsplit.lazy import lazy_module

sp = lazy_module("scipy.sparse")  # SciPy on first use: registering the plugin imports this module


# --- Hungarian with server slots ------------------------------------------------------------------
def slot_capacity(N: int, M: int, factor: float) -> np.ndarray:
    """cap_m = ceil(factor·N/M) slots per server (factor ≥ 1 so that Σ cap ≥ N)."""
    return np.full(M, int(math.ceil(max(factor, 1.0) * N / M)))


def hungarian_slots(cost: np.ndarray, cap) -> np.ndarray:
    """Assignment of N users to M servers minimising Σ cost[n, m(n)] with load_m ≤ cap_m."""
    cost = np.asarray(cost, float)
    N, M = cost.shape
    cap = np.broadcast_to(np.asarray(cap, int), (M,))
    if int(cap.sum()) < N:
        raise ValueError(f"{int(cap.sum())} slots for {N} users")
    from scipy.optimize import linear_sum_assignment

    cols = np.repeat(np.arange(M), np.minimum(cap, N))
    rows, c = linear_sum_assignment(cost[:, cols])
    server = np.empty(N, dtype=int)
    server[rows] = cols[c]
    return server


# --- the QCQP of block 1 and its SDR -------------------------------------------------------------
@dataclass
class QCQP:
    """min Σ_nm K χ + Σ_nm D χ α + Σ_n (qa α² + qb α)  s.t. χ ∈ {0,1}, Σ_m χ_nm = 1, Σ_n χ_nm ≤ cap_m,
    lo ≤ α ≤ hi (a constant Σ qc is added to every value)."""

    K: np.ndarray
    D: np.ndarray
    qa: np.ndarray
    qb: np.ndarray
    qc: np.ndarray
    lo: float
    hi: float
    cap: np.ndarray

    @property
    def shape(self):
        return self.K.shape

    def alpha_given(self, server) -> np.ndarray:
        """Exact α of the QCQP for a fixed assignment (convex quadratic per user)."""
        rows = np.arange(len(server))
        lin = self.D[rows, server] + self.qb
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(self.qa > 0, -lin / (2 * self.qa), np.where(lin > 0, self.lo, self.hi))
        return np.clip(a, self.lo, self.hi)

    def value(self, server, alpha) -> float:
        rows = np.arange(len(server))
        return float(np.sum(self.K[rows, server] + self.D[rows, server] * alpha + self.qa * alpha**2
                            + self.qb * alpha + self.qc))

    def enumerate_optimum(self) -> tuple[float, np.ndarray]:
        """Global optimum by enumerating all M^N assignments (tiny instances only, for tests)."""
        N, M = self.shape
        best, arg = math.inf, None
        for code in range(M**N):
            s = np.array([(code // M**i) % M for i in range(N)])
            if np.any(np.bincount(s, minlength=M) > self.cap):
                continue
            v = self.value(s, self.alpha_given(s))
            if v < best:
                best, arg = v, s
        return best, arg


@dataclass
class SDRResult:
    value: float                  # SDR optimum (a lower bound of the QCQP optimum)
    status: str
    Z: np.ndarray                 # lifted matrix (d × d)
    chi: np.ndarray               # (N, M) the relaxed χ = Z[:NM, -1]
    alpha: np.ndarray             # (N,) relaxed α
    solve_time_s: float
    solver: str
    rank1_ratio: float            # λ_max(Z)/trace(Z): 1 when the relaxation is tight (rank 1)


AUTO_CLARABEL_MAX_DIM = 40   # lifted size d = NM + N + 1 up to which "auto" uses Clarabel (interior point)


def solve_sdr(q: QCQP, solver: str = "auto") -> SDRResult:
    """Semidefinite relaxation of the block-1 QCQP, with RLT cuts valid for binary χ and boxed α:
    χ_nm χ_nm' = 0 (m ≠ m'), Σ_m χ_nm α_n = α_n, McCormick on χα, α² ≤ (lo+hi)α − lo·hi."""
    import cvxpy as cp

    # scale α = lo + Δ·u, u ∈ [0, 1] (keeps the lifted entries O(1) for the conic solver)
    lo0, Dl = q.lo, q.hi - q.lo
    q = QCQP(K=q.K + q.D * lo0, D=q.D * Dl, qa=q.qa * Dl**2, qb=(q.qb + 2 * q.qa * lo0) * Dl,
             qc=q.qc + q.qa * lo0**2 + q.qb * lo0, lo=0.0, hi=1.0, cap=q.cap)
    N, M = q.shape
    NM = N * M
    d = NM + N + 1
    t = d - 1
    ix = lambda n, m: n * M + m
    ia = lambda n: NM + n
    Z = cp.Variable((d, d), PSD=True)
    vz = cp.vec(Z, order="F")

    def sel(pairs):  # selection matrix picking Z[i, j] for (i, j) in pairs from vec(Z) (column-major)
        rows = np.arange(len(pairs))
        cols = np.array([i + j * d for i, j in pairs])
        return sp.csr_matrix((np.ones(len(pairs)), (rows, cols)), shape=(len(pairs), d * d))

    x_idx = [(ix(n, m), t) for n in range(N) for m in range(M)]
    a_idx = [(ia(n), t) for n in range(N)]
    xx_idx = [(ix(n, m), ix(n, m)) for n in range(N) for m in range(M)]
    xa_idx = [(ix(n, m), ia(n)) for n in range(N) for m in range(M)]
    aa_idx = [(ia(n), ia(n)) for n in range(N)]
    x = sel(x_idx) @ vz
    a = sel(a_idx) @ vz
    xx = sel(xx_idx) @ vz
    xa = sel(xa_idx) @ vz
    aa = sel(aa_idx) @ vz
    rowsum = sp.kron(sp.eye(N), np.ones((1, M)))            # Σ_m per user
    colsum = sp.kron(np.ones((1, N)), sp.eye(M))            # Σ_n per server
    expand = sp.kron(sp.eye(N), np.ones((M, 1)))            # α_n repeated for each m
    lo, hi = q.lo, q.hi
    cons = [Z[t, t] == 1, xx == x, rowsum @ x == 1, colsum @ x <= q.cap,
            a >= lo, a <= hi,
            xa >= lo * x, xa <= hi * x,
            xa >= expand @ a - hi * (1 - x), xa <= expand @ a - lo * (1 - x),
            rowsum @ xa == a, aa <= (lo + hi) * a - lo * hi]
    if M > 1:
        off = [(ix(n, m), ix(n, k)) for n in range(N) for m in range(M) for k in range(m + 1, M)]
        cons.append(sel(off) @ vz == 0)
    # normalise the objective (first-order solvers are scale-sensitive); the value is scaled back
    sc = max(float(np.max(np.abs(q.K))), float(np.max(np.abs(q.D))), float(np.max(np.abs(q.qa))),
             float(np.max(np.abs(q.qb))), 1e-300)
    obj = (q.K.ravel() / sc) @ x + (q.D.ravel() / sc) @ xa + (q.qa / sc) @ aa + (q.qb / sc) @ a
    prob = cp.Problem(cp.Minimize(obj), cons)
    if solver == "auto":
        # Clarabel: accurate, but 170 s at d = 101 (20×4) on this machine; SCS: 0.7-7 s there
        solver = "CLARABEL" if d <= AUTO_CLARABEL_MAX_DIM else "SCS"
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # "optimal_inaccurate" is reported in SDRResult.status instead
        warnings.simplefilter("ignore")
        _solve(cp, prob, solver)
    solver = _solve.used
    dt = time.perf_counter() - t0
    Zv = np.asarray(Z.value, float)
    ev = np.linalg.eigvalsh(Zv)
    return SDRResult(value=float(prob.value) * sc + float(np.sum(q.qc)), status=str(prob.status), Z=Zv,
                     chi=Zv[:NM, t].reshape(N, M), alpha=lo0 + Dl * Zv[NM:NM + N, t], solve_time_s=dt, solver=solver,
                     rank1_ratio=float(ev[-1] / max(np.sum(np.maximum(ev, 0)), 1e-300)))


def _solve(cp, prob, solver):
    try:
        if solver == "SCS":
            prob.solve(solver="SCS", eps=1e-5, max_iters=5000)
        else:
            prob.solve(solver=solver)
        _solve.used = solver
    except cp.error.SolverError:
        prob.solve(solver="SCS", eps=1e-5, max_iters=5000)
        _solve.used = "SCS"


@dataclass
class RoundingResult:
    server: np.ndarray
    alpha: np.ndarray
    value: float                  # block-1 objective of the chosen candidate (``score`` callable)
    sdr: SDRResult
    candidates: int
    chosen: str                   # "mean" | "gaussian" | "incumbent"
    info: dict = field(default_factory=dict)


def sdr_association(q: QCQP, rng: np.random.Generator, score=None, alpha_of=None, randomisations: int = 50,
                    incumbent=None, solver: str = "auto") -> RoundingResult:
    """SDR of ``q`` + Gaussian randomisation + Hungarian rounding.

    Candidates: the relaxed χ itself and ``randomisations`` draws ξ ~ N(μ, Z_ww − μμᵀ) (μ = Z[:, -1]);
    each is rounded to a capacitated assignment by :func:`hungarian_slots` (maximising Σ ξ_nm χ_nm),
    α is set by ``alpha_of(server)`` (default: the QCQP's exact α) and the candidate is scored by
    ``score(server, alpha)`` (default: the QCQP value). ``incumbent`` = (server, alpha) is also a
    candidate, so the step never returns something worse than it was given (by ``score``)."""
    res = solve_sdr(q, solver)
    N, M = q.shape
    NM = N * M
    alpha_of = alpha_of or q.alpha_given
    score = score or q.value
    mu = res.Z[:NM, -1]
    cov = res.Z[:NM, :NM] - np.outer(mu, mu)
    w, V = np.linalg.eigh((cov + cov.T) / 2)
    Lc = V * np.sqrt(np.maximum(w, 0))[None, :]
    cands = [("mean", mu.reshape(N, M))]
    for _ in range(randomisations):
        cands.append(("gaussian", (mu + Lc @ rng.standard_normal(NM)).reshape(N, M)))
    best = None
    seen = set()
    pool = []
    for name, xi in cands:
        s = hungarian_slots(-xi, q.cap)
        key = s.tobytes()
        if key in seen:
            continue
        seen.add(key)
        a = alpha_of(s)
        v = score(s, a)
        pool.append((float(v), s, a, name))
        if best is None or v < best[0]:
            best = (v, s, a, name)
    if incumbent is not None:
        s, a = np.asarray(incumbent[0], int), np.asarray(incumbent[1], float)
        v = score(s, a)
        if v < best[0]:
            best = (v, s, a, "incumbent")
    return RoundingResult(server=best[1], alpha=best[2], value=float(best[0]), sdr=res, candidates=len(seen),
                          chosen=best[3], info={"pool": sorted(pool, key=lambda c: c[0])})


# --- Dinkelbach ------------------------------------------------------------------------------------
@dataclass
class DinkelbachResult:
    x: object
    lam: float                    # final ratio N(x)/D(x)
    history: list                 # per iteration: {"k", "lambda", "F", "N", "D", "inner"}
    converged: bool
    iterations: int


def dinkelbach(inner, num, den, x0, tol: float = 1e-9, max_iter: int = 30, stop=None) -> DinkelbachResult:
    """min num(x)/den(x) (den > 0). ``inner(lam, x) -> (x', info)`` (approximately) minimises
    num − lam·den starting from x; ``stop()`` -> True aborts (time limit)."""
    x = x0
    Nv, Dv = num(x), den(x)
    lam = Nv / Dv
    hist = [{"k": 0, "lambda": lam, "F": None, "N": Nv, "D": Dv, "inner": None}]
    converged = False
    k = 0
    for k in range(1, max_iter + 1):
        x, info = inner(lam, x)
        Nv, Dv = num(x), den(x)
        F = Nv - lam * Dv
        lam_new = Nv / Dv
        hist.append({"k": k, "lambda": lam_new, "F": F, "N": Nv, "D": Dv, "inner": info})
        lam = lam_new
        if abs(F) <= tol * max(abs(Nv), 1e-300):
            converged = True
            break
        if stop is not None and stop():
            break
    return DinkelbachResult(x=x, lam=lam, history=hist, converged=converged, iterations=k)
