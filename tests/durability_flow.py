"""A seeded engine flow for the durability tests: one step per journal seq.

Steps are config changes (add a symbol, set limits, move a reference price) and order commands
(rows of a COMMAND_DTYPE array). ``apply_steps`` feeds any slice of them to an engine, order
commands either through ``process()`` in batches or through the per-call methods, so that "a
fresh engine fed the first n steps" is always one call away.
"""
from __future__ import annotations

import numpy as np

import matchcore as mc
from test_capi import random_commands
from engine_checks import apply_engine_command as apply_command


def make_flow(seed: int, n_commands: int, n_symbols: int = 3):
    """(steps, cmds): the steps are ("add", sym, name, limits), ("limits", sym, limits),
    ("ref", sym, price) or ("cmd", i) with i indexing cmds."""
    rng = np.random.default_rng(seed + 1000)
    cmds = random_commands(n_commands, seed, n_symbols=n_symbols, unknown_symbol=True,
                           price_lo=88, price_hi=112)
    steps = []
    for s in range(n_symbols):
        lim = dict(tick=1 + (s == 2), max_qty=18 + s, ref_price=100, band=11)
        steps.append(("add", s, f"S{s}" if s != 1 else None, lim))
    for i in range(n_commands):
        if rng.random() < 0.01:
            sym = int(rng.integers(n_symbols))
            if rng.random() < 0.5:
                steps.append(("ref", sym, int(rng.integers(97, 104))))
            else:
                steps.append(("limits", sym, {"max_qty": int(rng.integers(10, 25))}))
        steps.append(("cmd", i))
    return steps, cmds


def apply_config(eng, step):
    if step[0] == "add":
        eng.add_symbol(step[1], step[2], **step[3])
    elif step[0] == "limits":
        eng.set_limits(step[1], **step[2])
    else:
        eng.set_reference_price(step[1], step[2])


def apply_steps(eng, steps, cmds, *, per_call: bool = False, batch: int = 64, on_call=None):
    """Apply steps in order; runs of commands go through process() in batches of ``batch``
    (or one per-call method each). ``on_call()`` runs after every engine call."""
    i = 0
    while i < len(steps):
        if steps[i][0] != "cmd":
            apply_config(eng, steps[i])
            i += 1
            if on_call:
                on_call()
            continue
        j = i
        while j < len(steps) and steps[j][0] == "cmd" and j - i < batch:
            j += 1
        idx = [s[1] for s in steps[i:j]]
        if per_call:
            for k in idx:
                apply_command(eng, cmds[k].tolist())
                eng.events()
                if on_call:
                    on_call()
        else:
            eng.process(cmds[idx[0]:idx[-1] + 1])
            if on_call:
                on_call()
        i = j


def fresh_hash(steps, cmds, n: int) -> int:
    """State hash of an unjournaled engine fed the first n steps."""
    eng = mc.Engine()
    apply_steps(eng, steps[:n], cmds, batch=1 << 30)
    return eng.state_hash()


class PrefixHashes:
    """fresh_hash for many n from one pass: the hash after every step."""

    def __init__(self, steps, cmds):
        eng = mc.Engine()
        self.hashes = [eng.state_hash()]
        for step in steps:
            if step[0] == "cmd":
                eng.process(cmds[step[1]:step[1] + 1])
            else:
                apply_config(eng, step)
            self.hashes.append(eng.state_hash())

    def __getitem__(self, n: int) -> int:
        return self.hashes[n]
