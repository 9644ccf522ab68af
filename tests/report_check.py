#!/usr/bin/python3
"""report_check.py - renders the bench HTML report in headless Chromium and checks what the
browser built: the DOM after parsing (--dump-dom) must hold the svg charts and the summary
table by id, one bar per row, the top layers as bars, no element a name could have injected;
a screenshot (taken in the same Chromium run) must be a PNG of the window size whose pixels
include the bar colours.

Usage: report_check.py --driver test_report --workdir DIR   (writes DIR/sample.html first)
       report_check.py --mixrt mixrt --model M.onnx --workdir DIR
                       (mixrt bench --compare 'fp32;fp32,bf16' --profile --report, with the
                       expected counts taken from the same run's --json)
       report_check.py --html FILE --rows N --layer-bars M --workdir DIR
Exit 0 when every check passes, 1 otherwise (Chromium missing is a failure: install
Debian's chromium package, as scripts/setup.sh does)."""
import argparse
import html.parser
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import zlib

BAR_COLOURS = {"baseline": (0x33, 0x65, 0x8A), "compared": (0x6A, 0x9F, 0xB5), "peer": (0xE0, 0x7B, 0x39)}
WINDOW = (1200, 2600)
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("report_check: FAIL: " + msg)
    return cond


class Dom(html.parser.HTMLParser):
    """Collects, per element: tag, attributes, the ids of its svg/table ancestors."""

    VOID = {"meta", "br", "img", "input", "link", "hr", "source", "area", "base", "col", "embed", "wbr", "track"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []  # (tag, id)
        self.elements = []  # (tag, attrs dict, ancestor ids)
        self.text = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.elements.append((tag, a, [i for _, i in self.stack if i]))
        if tag not in self.VOID:
            self.stack.append((tag, a.get("id")))

    def handle_startendtag(self, tag, attrs):
        a = dict(attrs)
        self.elements.append((tag, a, [i for _, i in self.stack if i]))

    def handle_endtag(self, tag):
        for k in range(len(self.stack) - 1, -1, -1):
            if self.stack[k][0] == tag:
                del self.stack[k:]
                break

    def handle_data(self, data):
        self.text.append(data)


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def chromium(exe, workdir, args, timeout=60):
    # A private profile per call: parallel test runs must not share Chromium's lock.
    profile = os.path.join(workdir, "profile-%d" % os.getpid())
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           "--disable-extensions", "--user-data-dir=" + profile] + args
    t0 = time.time()
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    shutil.rmtree(profile, ignore_errors=True)
    return res, time.time() - t0, cmd


def png_pixels(data):
    """Decodes an 8-bit RGB/RGBA non-interlaced PNG: (width, height, channels, rows)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("no PNG signature")
    pos, idat, ihdr = 8, [], None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if not ihdr:
        raise ValueError("no IHDR chunk")
    w, h, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        return w, h, 0, None  # a valid PNG we do not decode further
    ch = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * ch
    if len(raw) != h * (stride + 1):
        raise ValueError("IDAT holds %d bytes, expected %d" % (len(raw), h * (stride + 1)))
    try:
        import numpy as np
    except ImportError:
        return w, h, ch, None
    rows = np.zeros((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=y * (stride + 1) + 1).astype(np.int32)
        if f == 0:
            cur = line
        elif f == 1:  # Sub: running sum per channel
            cur = np.cumsum(line.reshape(w, ch), axis=0).reshape(-1) & 255
        elif f == 2:  # Up
            cur = (line + prev) & 255
        else:  # Average, Paeth: sequential along the row
            cur = np.zeros(stride, dtype=np.int32)
            lst, pv = line.tolist(), prev.tolist()
            out = [0] * stride
            for i in range(stride):
                a = out[i - ch] if i >= ch else 0
                b = pv[i]
                if f == 3:
                    out[i] = (lst[i] + ((a + b) >> 1)) & 255
                else:
                    c = pv[i - ch] if i >= ch else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                    out[i] = (lst[i] + pred) & 255
            cur = np.array(out, dtype=np.int32)
        rows[y] = cur
        prev = cur
    return w, h, ch, rows.reshape(h, w, ch)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", help="test_report binary: writes the sample page with --sample")
    ap.add_argument("--html", help="an existing report instead of the sample")
    ap.add_argument("--rows", type=int)
    ap.add_argument("--layer-bars", type=int)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--mixrt", help="the mixrt binary: the page comes from mixrt bench --report")
    ap.add_argument("--model", help="the model for --mixrt")
    ap.add_argument("--compare", default="fp32;fp32,bf16", help="the --compare list for --mixrt")
    ap.add_argument("--no-peer", action="store_true", help="the page has no peer row")
    opt = ap.parse_args()
    t_start = time.time()
    os.makedirs(opt.workdir, exist_ok=True)

    exe = find_chromium()
    if not exe:
        print("report_check: FAIL: chromium not found on PATH (install Debian's 'chromium' package; "
              "scripts/setup.sh does)")
        return 1

    scripts_in_names = 0
    want_runs = []
    if opt.driver:
        page = os.path.join(os.path.abspath(opt.workdir), "sample.html")
        res = subprocess.run([opt.driver, "--sample", page], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, timeout=60)
        if res.returncode != 0:
            print("report_check: FAIL: %s --sample %s exited %d: %s" % (opt.driver, page, res.returncode,
                                                                          res.stderr.strip()))
            return 1
        m = re.search(r"rows=(\d+) layer_bars=(\d+) scripts_in_names=(\d+)", res.stdout)
        if not m:
            print("report_check: FAIL: the driver did not print its counts: %r" % res.stdout)
            return 1
        rows, layer_bars, scripts_in_names = (int(g) for g in m.groups())
    elif opt.mixrt and opt.model:
        page = os.path.join(os.path.abspath(opt.workdir), "bench.html")
        jpath = os.path.join(os.path.abspath(opt.workdir), "bench.json")
        cmd = [opt.mixrt, "bench", opt.model, "--compare", opt.compare, "--profile", "--iterations", "30",
               "--warmup-ms", "10", "--report", page, "--json", jpath]
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                             timeout=120)
        if res.returncode != 0:
            print("report_check: FAIL: %s exited %d: %s" % (" ".join(cmd), res.returncode, res.stderr.strip()[-800:]))
            return 1
        import json
        with open(jpath, encoding="utf-8") as f:
            jrows = json.load(f)["rows"]
        rows = len(jrows)
        n_layers = next((len(r["profile"]["layers"]) for r in jrows if r.get("profile", {}).get("layers")), 0)
        layer_bars = min(25, n_layers)
        want_runs = [r.get("runs") for r in jrows]
        opt.no_peer = not any(r.get("backend") == "onnxruntime" for r in jrows)
    elif opt.html and opt.rows is not None and opt.layer_bars is not None:
        page, rows, layer_bars = os.path.abspath(opt.html), opt.rows, opt.layer_bars
    else:
        ap.error("give --driver, --mixrt with --model, or --html with --rows and --layer-bars")
    url = "file://" + page

    # One Chromium run does both: the DOM it built from the page (stdout) and a screenshot.
    png = os.path.join(opt.workdir, "report.png")
    if os.path.exists(png):
        os.remove(png)
    res, dt, cmd = chromium(exe, opt.workdir, ["--hide-scrollbars", "--force-device-scale-factor=1",
                                               "--window-size=%d,%d" % WINDOW, "--screenshot=" + png,
                                               "--dump-dom", url])

    # 1. The DOM.
    dom_text = res.stdout.decode("utf-8", "replace")
    if not check(res.returncode == 0 and "<html" in dom_text,
                 "chromium --dump-dom exited %d with %d bytes of DOM: %s\n  %s" %
                 (res.returncode, len(dom_text), res.stderr.decode("utf-8", "replace")[-800:], " ".join(cmd))):
        return 1
    with open(os.path.join(opt.workdir, "dom.html"), "w", encoding="utf-8") as f:
        f.write(dom_text)
    dom = Dom()
    dom.feed(dom_text)
    dom.close()
    by_id = {}
    for tag, a, _ in dom.elements:
        if "id" in a:
            by_id.setdefault(a["id"], []).append(tag)
    for ident, want in (("comparison", "svg"), ("distribution", "svg"), ("layers", "svg"), ("summary", "table")):
        check(by_id.get(ident) == [want], "id=%r: expected one <%s>, found %r" % (ident, want, by_id.get(ident)))

    def classes(a):
        return (a.get("class") or "").split()

    bars = [(tag, a) for tag, a, anc in dom.elements if "row-bar" in classes(a)]
    check(len(bars) == rows, "%d elements with class row-bar, expected %d (one per row)" % (len(bars), rows))
    check(all(tag == "rect" for tag, _ in bars), "a row-bar is not a rect: %r" % [t for t, _ in bars])
    in_comp = [1 for tag, a, anc in dom.elements if "row-bar" in classes(a) and "comparison" in anc]
    check(len(in_comp) == rows, "%d row bars inside svg#comparison, expected %d" % (len(in_comp), rows))
    if rows:
        check(sum("base" in classes(a) for _, a in bars) == 1, "not exactly one baseline bar")
        if not opt.no_peer:
            check(sum("peer" in classes(a) for _, a in bars) == 1, "not exactly one peer bar")
    widths = [a.get("width") for _, a in bars]
    check(all(w is not None and re.fullmatch(r"[0-9.]+", w) for w in widths), "row-bar widths %r" % widths)
    lbars = [1 for tag, a, anc in dom.elements if tag == "rect" and "layer-bar" in classes(a) and "layers" in anc]
    check(len(lbars) == layer_bars, "%d layer bars inside svg#layers, expected %d" % (len(lbars), layer_bars))
    trs = [1 for tag, a, anc in dom.elements if tag == "tr" and "summary" in anc and "row" in classes(a)]
    check(len(trs) == rows, "%d data rows in table#summary, expected %d" % (len(trs), rows))
    hist = [1 for tag, a, anc in dom.elements if tag == "path" and "hist" in classes(a) and "distribution" in anc]
    check(len(hist) >= 1 or rows == 0, "no histogram path inside svg#distribution")
    bad = sorted({tag for tag, _, _ in dom.elements if tag in ("script", "img", "iframe", "object", "embed", "link")})
    check(not bad, "elements a name could have injected are in the DOM: %r" % bad)
    ext = [(tag, k, v) for tag, a, _ in dom.elements for k, v in a.items()
           if v and ("http:" in v or "https:" in v or "url(" in v)]
    check(not ext, "the page refers to something outside itself: %r" % ext[:3])
    text = "".join(dom.text)
    shown = text.count("<script>alert(")
    for k, runs in enumerate(want_runs):
        check("n=%s, median" % runs in text, "row %d: the distribution does not say n=%s (the --json runs)" % (k + 1, runs))
    check(shown >= scripts_in_names,
          "hostile names shown as text %d times, expected at least %d" % (shown, scripts_in_names))

    # 2. The screenshot: a PNG of the window size, with the bar colours on it.
    if check(res.returncode == 0 and os.path.exists(png) and os.path.getsize(png) > 0,
             "chromium --screenshot exited %d, %s: %s\n  %s" %
             (res.returncode, "%d bytes" % os.path.getsize(png) if os.path.exists(png) else "no file",
              res.stderr.decode("utf-8", "replace")[-800:], " ".join(cmd))):
        with open(png, "rb") as f:
            data = f.read()
        try:
            w, h, ch, pix = png_pixels(data)
            check((w, h) == WINDOW, "screenshot is %dx%d, expected %dx%d" % (w, h, WINDOW[0], WINDOW[1]))
            if pix is not None and rows:
                flat = pix[:, :, :3].reshape(-1, 3)
                want = ["baseline"] + (["peer"] if not opt.no_peer else []) + (["compared"] if rows > 2 else [])
                for name in want:
                    r, g, b = BAR_COLOURS[name]
                    n = int(((flat[:, 0] == r) & (flat[:, 1] == g) & (flat[:, 2] == b)).sum())
                    check(n >= 200, "the %s bar colour #%02x%02x%02x covers %d pixels of the screenshot" %
                          (name, r, g, b, n))
                distinct = len({tuple(p) for p in flat[::97].tolist()})
                check(distinct >= 8, "the screenshot has only %d distinct colours (blank page?)" % distinct)
        except (ValueError, zlib.error) as e:
            check(False, "screenshot %s is not a PNG we can read: %s" % (png, e))

    total = time.time() - t_start
    print("report_check: %s: %d row bars, %d layer bars, %d summary rows; chromium %.1f s, total %.1f s; "
          "%d failed" % (page, len(bars), len(lbars), len(trs), dt, total, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
