#!/usr/bin/python3
"""Accuracy of per-domain reward models under another routing.

    scripts/reroute.py --pairs EVAL.jsonl --route ROUTES.jsonl \\
        --scores DOMAIN=SCORES.jsonl [--scores DOMAIN=SCORES.jsonl ...]

EVAL.jsonl holds held-out pairs with their "domain" (for a job:
`grep '"split":"eval"' OUT/state/data.jsonl`). Each SCORES.jsonl is what
`rewire score --model MODEL [--base BASE]` wrote for them with that domain's
model (one "margin" a line, in order), ROUTES.jsonl what `rewire score` wrote
with a router or router adapter (one "domain" a line). Prints each domain's
pairwise accuracy when every pair is scored by the model its route names,
their mean, the route accuracy, and the same with true-domain routing; so
the models of one bundle can be judged under another bundle's router.
"""
import argparse
import json


def lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--route", required=True)
    ap.add_argument("--scores", action="append", required=True, metavar="DOMAIN=FILE")
    a = ap.parse_args()
    pairs = lines(a.pairs)
    margins = {}
    for s in a.scores:
        dom, _, path = s.partition("=")
        margins[dom] = [r["margin"] for r in lines(path)]
        if len(margins[dom]) != len(pairs):
            raise SystemExit("reroute: %s has %d scores for %d pairs" % (path, len(margins[dom]), len(pairs)))
    routes = [r["domain"] for r in lines(a.route)]
    if len(routes) != len(pairs):
        raise SystemExit("reroute: %s has %d routes for %d pairs" % (a.route, len(routes), len(pairs)))
    doms = sorted({p["domain"] for p in pairs})
    print("%-28s %6s %9s %9s" % ("domain", "pairs", "routed", "oracle"))
    routed, oracle = [], []
    for d in doms:
        ix = [i for i, p in enumerate(pairs) if p["domain"] == d]
        r = sum(margins[routes[i]][i] > 0 for i in ix) / len(ix)
        o = sum(margins[d][i] > 0 for i in ix) / len(ix)
        routed.append(r)
        oracle.append(o)
        print("%-28s %6d %9.3f %9.3f" % (d, len(ix), r, o))
    hit = sum(routes[i] == p["domain"] for i, p in enumerate(pairs)) / len(pairs)
    print("%-28s %6s %9.3f %9.3f" % ("mean", "", sum(routed) / len(doms), sum(oracle) / len(doms)))
    print("route accuracy %.3f" % hit)


if __name__ == "__main__":
    main()
