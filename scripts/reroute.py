#!/usr/bin/python3
"""Accuracy of per-domain reward models under another routing.

    scripts/reroute.py --pairs EVAL.jsonl --route ROUTES.jsonl \\
        --scores DOMAIN=SCORES.jsonl [--scores DOMAIN=SCORES.jsonl ...] \\
        [--soft] [--cross]

EVAL.jsonl holds held-out pairs with their "domain" (for a job:
`grep '"split":"eval"' OUT/state/data.jsonl`). Each SCORES.jsonl is what
`rewire score --model MODEL [--base BASE]` wrote for them with that domain's
model (one "margin" a line, in order), ROUTES.jsonl what `rewire score` wrote
with a router or router adapter (one "domain" a line). Prints each domain's
pairwise accuracy when every pair is scored by the model its route names,
their mean, the route accuracy, and the same with true-domain routing; so
the models of one bundle can be judged under another bundle's router.
With --soft a pair's margin is instead every model's margin weighted by the
router's probability of its domain (the "probs" of each route line); the
route accuracy and the table of where pairs went still count the domain each
route line names. --cross also prints every model's accuracy on every
domain's pairs and where each domain's pairs were routed. Accuracies count
pairs (a prompt with two pairs counts twice).
"""
import argparse
import json


def lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--route", required=True)
    ap.add_argument("--scores", action="append", required=True, metavar="DOMAIN=FILE")
    ap.add_argument("--cross", action="store_true", help="print each model's accuracy on each domain")
    ap.add_argument("--soft", action="store_true", help="weight every model by the router's probabilities")
    a = ap.parse_args()
    pairs = lines(a.pairs)
    if not pairs:
        raise SystemExit("reroute: %s holds no pairs" % a.pairs)
    margins = {}
    for s in a.scores:
        dom, _, path = s.partition("=")
        margins[dom] = [r["margin"] for r in lines(path)]
        if len(margins[dom]) != len(pairs):
            raise SystemExit("reroute: %s has %d scores for %d pairs" % (path, len(margins[dom]), len(pairs)))
    route_lines = lines(a.route)
    routes = [r["domain"] for r in route_lines]
    if len(routes) != len(pairs):
        raise SystemExit("reroute: %s has %d routes for %d pairs" % (a.route, len(routes), len(pairs)))
    for i, p in enumerate(pairs):
        if p.get("domain") not in margins:
            raise SystemExit("reroute: %s:%d: domain %r has no --scores" % (a.pairs, i + 1, p.get("domain")))
    if a.soft:
        if any(set(r.get("probs", {})) != set(margins) for r in route_lines):
            raise SystemExit("reroute: --soft needs every route line's \"probs\" over the scored domains")
    else:
        for i, d in enumerate(routes):
            if d not in margins:
                raise SystemExit("reroute: %s:%d: routed to %r, which has no --scores" % (a.route, i + 1, d))

    def routed_margin(i):
        if a.soft:
            return sum(p * margins[d][i] for d, p in route_lines[i]["probs"].items())
        return margins[routes[i]][i]

    doms = sorted({p["domain"] for p in pairs})
    print("%-28s %6s %9s %9s" % ("domain", "pairs", "routed", "oracle"))
    routed, oracle = [], []
    for d in doms:
        ix = [i for i, p in enumerate(pairs) if p["domain"] == d]
        r = sum(routed_margin(i) > 0 for i in ix) / len(ix)
        o = sum(margins[d][i] > 0 for i in ix) / len(ix)
        routed.append(r)
        oracle.append(o)
        print("%-28s %6d %9.3f %9.3f" % (d, len(ix), r, o))
    hit = sum(routes[i] == p["domain"] for i, p in enumerate(pairs)) / len(pairs)
    print("%-28s %6s %9.3f %9.3f" % ("mean", "", sum(routed) / len(doms), sum(oracle) / len(doms)))
    print("route accuracy %.3f" % hit)
    if a.cross:
        w = max(9, *(len(d) for d in doms))

        def table(title, rows):
            print("\n%s\n%-28s %s" % (title, "", " ".join("%*s" % (w, d) for d in doms)))
            for name, xs in rows:
                print("%-28s %s" % (name, " ".join("%*.3f" % (w, x) for x in xs)))

        share = lambda ix, f: sum(f(i) for i in ix) / len(ix)
        by_dom = {d: [i for i, p in enumerate(pairs) if p["domain"] == d] for d in doms}
        table("accuracy of each model (rows) on each domain's pairs (columns):",
              [(m, [share(by_dom[d], lambda i: margins[m][i] > 0) for d in doms]) for m in sorted(margins)])
        table("share of each domain's pairs (rows) routed to each domain (columns):",
              [(d, [share(by_dom[d], lambda i: routes[i] == e) for e in doms]) for d in doms])


if __name__ == "__main__":
    main()
