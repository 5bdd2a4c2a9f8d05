#!/usr/bin/env python3
"""Draw the FastFN app icon (a bold "fn" on a rounded teal square) as RGBA PNGs in icons/.

No imaging library: a tiny rasteriser with 4x4 supersampling, written with zlib/struct."""
import os, struct, zlib

def png(path, w, h, px):
    raw = b"".join(b"\x00" + bytes(px[y * w * 4:(y + 1) * w * 4]) for y in range(h))
    def chunk(t, d):
        c = struct.pack(">I", len(d)) + t + d
        return c + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)

def inside_rounded(x, y, r):  # unit square [0,1], corner radius r
    cx = min(max(x, r), 1 - r); cy = min(max(y, r), 1 - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r

def in_rect(x, y, x0, y0, x1, y1):
    return x0 <= x <= x1 and y0 <= y <= y1

def glyph(x, y):
    """A bold 'f' and 'n' in unit coordinates."""
    t = 0.085  # stroke
    # f: stem, top hook, crossbar
    if in_rect(x, y, 0.22, 0.30, 0.22 + t, 0.78): return True
    if in_rect(x, y, 0.22, 0.22, 0.44, 0.22 + t) and not (x < 0.30 and y < 0.27): return True
    if in_rect(x, y, 0.14, 0.42, 0.42, 0.42 + t): return True
    # rounded top-left of f
    dx, dy = x - 0.34, y - 0.34
    if 0.12 ** 2 - 0.0 >= dx * dx + dy * dy >= (0.12 - t) ** 2 and x <= 0.34 and y <= 0.34: return True
    # n: left stem, arch, right stem
    if in_rect(x, y, 0.52, 0.42, 0.52 + t, 0.78): return True
    if in_rect(x, y, 0.78, 0.56, 0.78 + t, 0.78): return True
    dx, dy = x - 0.6925, y - 0.56
    if 0.1725 ** 2 >= dx * dx + dy * dy >= (0.1725 - t) ** 2 and y <= 0.56: return True
    return False

def render(size):
    bg, fg = (14, 116, 144), (255, 255, 255)
    px = []
    s = 4
    for j in range(size):
        for i in range(size):
            cov_bg = cov_fg = 0
            for sj in range(s):
                for si in range(s):
                    x = (i + (si + 0.5) / s) / size; y = (j + (sj + 0.5) / s) / size
                    if inside_rounded(x, y, 0.2):
                        if glyph(x, y): cov_fg += 1
                        else: cov_bg += 1
            n = s * s; a = (cov_bg + cov_fg) / n
            if a == 0:
                px += [0, 0, 0, 0]; continue
            f = cov_fg / (cov_bg + cov_fg)
            px += [round(bg[k] * (1 - f) + fg[k] * f) for k in range(3)] + [round(a * 255)]
    return px

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "icons")
os.makedirs(out, exist_ok=True)
for name, size in [("32x32.png", 32), ("128x128.png", 128), ("128x128@2x.png", 256), ("icon.png", 512)]:
    png(os.path.join(out, name), size, size, render(size))
    print("icons/" + name)
