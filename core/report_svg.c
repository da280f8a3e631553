/* report_svg.c — the report's two plots, as SVG written by hand.
 *
 * An SVG line chart or bar chart is a few dozen elements: axes as lines,
 * ticks at "nice" steps (1, 2 or 5 times a power of ten), a polyline per
 * curve or a rect per bar, a legend, text labels. Writing them directly
 * keeps rewire free of a plotting dependency and the files small, and any
 * browser or markdown viewer shows them. Each bar carries a <title>, so
 * hovering shows its exact figure.
 */
#include "report.h"

#include "report_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const palette[10] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                        "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};

/* Colours of the bundle kinds, in rw_report__kinds order. */
static const char *const kind_colour[RW_REPORT_NKINDS] = {"#9e9e9e", "#4e79a7", "#f28e2b",
                                                          "#59a14f"};

typedef struct axis {
    double lo, hi, step; /* data range covered and tick spacing */
} axis_t;

/* Ticks about `target` apart over [lo, hi], the range widened to them. */
static axis_t nice_axis(double lo, double hi, int target)
{
    if (!(hi > lo)) {
        double pad = fabs(lo) > 0 ? fabs(lo) * 0.5 : 1.0;
        lo -= pad;
        hi += pad;
    }
    double raw = (hi - lo) / target, mag = pow(10.0, floor(log10(raw))), f = raw / mag;
    double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
    return (axis_t){floor(lo / step) * step, ceil(hi / step) * step, step};
}

static FILE *svg_open(char **buf, size_t *len, int w, int h)
{
    FILE *f = open_memstream(buf, len);
    if (!f)
        abort(); /* only out of memory */
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n",
            w, h, w, h, w, h);
    return f;
}

static char *svg_close(FILE *f, char **buf)
{
    fputs("</svg>\n", f);
    fclose(f);
    return *buf;
}

static void text(FILE *f, double x, double y, const char *anchor, const char *extra, const char *s)
{
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s%s>", x, y, anchor,
            extra ? " " : "", extra ? extra : "");
    rw_report__xml(f, s);
    fputs("</text>\n", f);
}

/* The y axis with ticks and grid lines over plot box (x0, y0)-(x1, y1). */
static void y_axis(FILE *f, axis_t a, double x0, double y0, double x1, double y1, const char *title)
{
    for (double v = a.lo; v <= a.hi + a.step * 1e-6; v += a.step) {
        double y = y1 - (v - a.lo) / (a.hi - a.lo) * (y1 - y0);
        char label[32];
        snprintf(label, sizeof label, "%g", fabs(v) < a.step * 1e-9 ? 0.0 : v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>\n",
                x0, y, x1, y);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n",
                x0 - 5, y, x0, y);
        text(f, x0 - 8, y + 4, "end", NULL, label);
    }
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", x0, y0,
            x0, y1);
    char rot[96];
    snprintf(rot, sizeof rot, "transform=\"rotate(-90 %.1f %.1f)\"", x0 - 44, (y0 + y1) / 2);
    text(f, x0 - 44, (y0 + y1) / 2, "middle", rot, title);
}

static void legend_entry(FILE *f, double x, double y, const char *colour, const char *dash,
                         const char *label)
{
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
            "stroke-width=\"3\"%s%s%s/>\n",
            x, y - 4, x + 22, y - 4, colour, dash ? " stroke-dasharray=\"" : "", dash ? dash : "",
            dash ? "\"" : "");
    text(f, x + 28, y, "start", NULL, label);
}

/* The [step, loss] points of a task's curve that are finite. */
static size_t curve_points(const json_t *task, double *xs, double *ys, size_t cap)
{
    json_t *curve = rw_report__arr(task, "loss_curve"), *p;
    size_t i, n = 0;
    json_array_foreach(curve, i, p)
    {
        json_t *a = json_array_get(p, 0), *b = json_array_get(p, 1);
        if (!json_is_number(a) || !json_is_number(b) || n == cap)
            continue;
        double x = json_number_value(a), y = json_number_value(b);
        if (isfinite(x) && isfinite(y))
            xs[n] = x, ys[n++] = y;
    }
    return n;
}

char *rw_report_loss_svg(const json_t *results)
{
    enum { W = 760, H = 440 };
    const double x0 = 70, y0 = 40, x1 = W - 230, y1 = H - 56;
    char *buf;
    size_t len;
    FILE *f = svg_open(&buf, &len, W, H);
    text(f, W / 2.0, 22, "middle", "font-size=\"15\"", "Training loss per task");
    json_t *tasks = rw_report__arr(results, "tasks"), *t;
    size_t i, total = 0, cap = 0;
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    json_array_foreach(tasks, i, t)
    {
        size_t n = json_array_size(rw_report__arr(t, "loss_curve"));
        cap = n > cap ? n : cap;
    }
    double *xs = malloc((cap ? cap : 1) * sizeof *xs), *ys = malloc((cap ? cap : 1) * sizeof *ys);
    if (!xs || !ys)
        abort();
    json_array_foreach(tasks, i, t)
    {
        size_t n = curve_points(t, xs, ys, cap);
        for (size_t k = 0; k < n; k++) {
            xmin = fmin(xmin, xs[k]), xmax = fmax(xmax, xs[k]);
            ymin = fmin(ymin, ys[k]), ymax = fmax(ymax, ys[k]);
        }
        total += n > 0;
    }
    if (!total) {
        text(f, W / 2.0, H / 2.0, "middle", NULL, "no loss curves in the results");
        free(xs);
        free(ys);
        return svg_close(f, &buf);
    }
    axis_t ax = nice_axis(fmin(xmin, 0), xmax, 8), ay = nice_axis(fmin(ymin, 0), ymax, 6);
    y_axis(f, ay, x0, y0, x1, y1, "loss");
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", x0, y1,
            x1, y1);
    for (double v = ax.lo; v <= ax.hi + ax.step * 1e-6; v += ax.step) {
        double x = x0 + (v - ax.lo) / (ax.hi - ax.lo) * (x1 - x0);
        char label[32];
        snprintf(label, sizeof label, "%g", v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", x,
                y1, x, y1 + 5);
        text(f, x, y1 + 18, "middle", NULL, label);
    }
    text(f, (x0 + x1) / 2, y1 + 40, "middle", NULL, "step");
    size_t shown = 0, max_legend = (size_t)((H - 50) / 18);
    json_array_foreach(tasks, i, t)
    {
        size_t n = curve_points(t, xs, ys, cap);
        if (!n)
            continue;
        const char *colour = palette[shown % 10], *dash = shown >= 10 ? "6 3" : NULL;
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"%s%s%s points=\"",
                colour, dash ? " stroke-dasharray=\"" : "", dash ? dash : "", dash ? "\"" : "");
        for (size_t k = 0; k < n; k++)
            fprintf(f, "%s%.1f,%.1f", k ? " " : "",
                    x0 + (xs[k] - ax.lo) / (ax.hi - ax.lo) * (x1 - x0),
                    y1 - (ys[k] - ay.lo) / (ay.hi - ay.lo) * (y1 - y0));
        fputs("\"/>\n", f);
        char label[160];
        const char *kind = rw_report__str(t, "kind"), *dom = rw_report__str(t, "domain");
        snprintf(label, sizeof label, "%s %s (task %.0f)", kind ? kind : "?", dom ? dom : "all",
                 rw_report__num(t, "id"));
        if (shown < max_legend)
            legend_entry(f, x1 + 16, y0 + 8 + 18.0 * (double)shown, colour, dash, label);
        shown++;
    }
    if (shown > max_legend) {
        char more[48];
        snprintf(more, sizeof more, "and %zu more", shown - max_legend);
        text(f, x1 + 16, y0 + 8 + 18.0 * (double)max_legend, "start", NULL, more);
    }
    free(xs);
    free(ys);
    return svg_close(f, &buf);
}

char *rw_report_accuracy_svg(const json_t *results)
{
    const json_t *b[RW_REPORT_NKINDS];
    size_t nb = 0;
    for (int k = 0; k < RW_REPORT_NKINDS; k++) {
        b[k] = rw_report__bundle(results, rw_report__kinds[k]);
        b[k] = json_is_object(json_object_get(b[k], "eval")) ? b[k] : NULL;
        nb += b[k] != NULL;
    }
    const char **doms;
    size_t nd = rw_report__domains(results, &doms), ng = nd + 1; /* and the mean */
    double bar = 16, gap = 28, group = (double)(nb ? nb : 1) * bar + gap;
    const double x0 = 70, y0 = 40;
    int W = (int)(x0 + (double)ng * group + 150), H = 400;
    W = W < 480 ? 480 : W;
    const double x1 = W - 140, y1 = H - 70;
    char *buf;
    size_t len;
    FILE *f = svg_open(&buf, &len, W, H);
    text(f, W / 2.0, 22, "middle", "font-size=\"15\"", "Held-out pairwise accuracy per domain");
    if (!nb) {
        text(f, W / 2.0, H / 2.0, "middle", NULL, "no evaluated bundles in the results");
        free(doms);
        return svg_close(f, &buf);
    }
    axis_t ay = {0.0, 1.0, 0.2};
    y_axis(f, ay, x0, y0, x1, y1, "pairwise accuracy");
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", x0, y1,
            x1, y1);
    double slot = (x1 - x0) / (double)ng;
    for (size_t g = 0; g < ng; g++) {
        const char *name = g < nd ? doms[g] : "mean";
        double gx = x0 + slot * (double)g + (slot - (double)nb * bar) / 2, base = NAN;
        size_t j = 0;
        for (int k = 0; k < RW_REPORT_NKINDS; k++) {
            if (!b[k])
                continue;
            const json_t *ev = json_object_get(b[k], "eval");
            double v = g < nd ? rw_report__num(rw_report__domain_eval(b[k], name), "accuracy")
                              : rw_report__num(ev, "mean_accuracy");
            double x = gx + bar * (double)j++;
            if (!isfinite(v))
                continue;
            if (k == 0)
                base = v;
            v = fmin(fmax(v, 0.0), 1.0);
            double h = v * (y1 - y0);
            fprintf(f,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
                    "<title>",
                    x, y1 - h, bar - 2, h, kind_colour[k]);
            rw_report__xml(f, rw_report__kinds[k]);
            fputs(" ", f);
            rw_report__xml(f, name);
            fprintf(f, ": %.3f</title></rect>\n", v);
        }
        if (isfinite(base)) /* the baseline's level across the group */
            fprintf(f,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#616161\" "
                    "stroke-dasharray=\"3 2\"/>\n",
                    gx - 3, y1 - base * (y1 - y0), gx + (double)nb * bar + 1,
                    y1 - base * (y1 - y0));
        double cx = x0 + slot * ((double)g + 0.5);
        char rot[96];
        snprintf(rot, sizeof rot, "transform=\"rotate(-25 %.1f %.1f)\"", cx, y1 + 18);
        text(f, cx, y1 + 18, strlen(name) * 7 > slot ? "end" : "middle",
             strlen(name) * 7 > slot ? rot : NULL, name);
    }
    for (int k = 0, j = 0; k < RW_REPORT_NKINDS; k++)
        if (b[k])
            legend_entry(f, x1 + 16, y0 + 8 + 18.0 * j++, kind_colour[k], NULL,
                         rw_report__kinds[k]);
    free(doms);
    return svg_close(f, &buf);
}
