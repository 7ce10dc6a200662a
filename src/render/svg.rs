//! Self-contained SVG, written by hand: no scripts, no external fonts or
//! markers (arrow heads are plain polygons, so every viewer draws them).

use std::fmt::Write as _;

use super::style::{
    self, Dash, EdgeStyle, FONT_FAMILY, INK, LegendItem, MUTED, NAME_SIZE, NodeStyle, PAD, PAPER,
    Shape, TEXT_SIZE, hex, text_width,
};
use super::xml::Escaped;
use crate::diagram::{View, ViewNode};
use crate::layout::{Layout, NodeBox, Point, header_height, line_height, row_centre};

/// A coordinate or length printed with one decimal, as `{:.1}` prints it.
fn f(v: f64) -> OneDecimal {
    OneDecimal(v)
}

/// `{:.1}` without its exact decimal expansion (the slow path of float
/// formatting that a half-tenth coordinate such as `12.25` takes): the
/// same digits, rounded half to even on the exact value, for the numbers
/// a drawing has. Drawings print hundreds of thousands of them.
struct OneDecimal(f64);

/// The digits of `v` with one decimal, at the end of `text`; `None` for
/// numbers this fast path does not cover (left to `{:.1}`).
fn one_decimal(v: f64, text: &mut [u8; 24]) -> Option<&[u8]> {
    let a = v.abs();
    if !a.is_finite() || a >= 4_294_967_296.0 {
        return None;
    }
    // `a * 10` is `p + e` exactly (the product's rounding error is
    // `e`, from the fused multiply-add), so the tenths round on the
    // exact value: by `p`'s fraction, or by `e` when it is exactly a half.
    let p = a * 10.0;
    let e = a.mul_add(10.0, -p);
    let k0 = p.floor();
    let frac = p - k0;
    let up = if frac != 0.5 {
        frac > 0.5
    } else if e != 0.0 {
        e > 0.0
    } else {
        k0 % 2.0 != 0.0
    };
    let k = k0 as u64 + u64::from(up);
    let mut at = text.len() - 2;
    text[at] = b'.';
    text[at + 1] = b'0' + (k % 10) as u8;
    let mut whole = k / 10;
    loop {
        at -= 1;
        text[at] = b'0' + (whole % 10) as u8;
        whole /= 10;
        if whole == 0 {
            break;
        }
    }
    if v.is_sign_negative() {
        at -= 1;
        text[at] = b'-';
    }
    Some(&text[at..])
}

impl std::fmt::Display for OneDecimal {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.0;
        let mut text = [0u8; 24];
        match one_decimal(v, &mut text) {
            Some(digits) => out.write_str(std::str::from_utf8(digits).expect("ASCII digits")),
            None => write!(out, "{v:.1}"),
        }
    }
}

/// Appends the pieces of an element to the document without going
/// through `write!`: a drawing of 10,000 services has 1.6 million numbers,
/// and formatting them cost more than everything else the writer does.
struct Out<'a>(&'a mut String);

impl Out<'_> {
    /// Markup as it is.
    fn s(&mut self, text: &str) -> &mut Self {
        self.0.push_str(text);
        self
    }

    /// A number with one decimal.
    fn n(&mut self, v: f64) -> &mut Self {
        let mut text = [0u8; 24];
        match one_decimal(v, &mut text) {
            Some(digits) => self.0.extend(digits.iter().map(|&b| char::from(b))),
            None => {
                let _ = write!(self.0, "{v:.1}");
            }
        }
        self
    }

    /// A whole number.
    fn u(&mut self, v: usize) -> &mut Self {
        let _ = write!(self.0, "{v}");
        self
    }

    /// A colour as `#rrggbb`.
    fn c(&mut self, c: style::Rgb) -> &mut Self {
        self.0.extend(hex(c).text().iter().map(|&b| char::from(b)));
        self
    }

    /// Text escaped for XML.
    fn e(&mut self, text: &str) -> &mut Self {
        super::xml::push_str_escaped(self.0, text);
        self
    }
}

fn shape(out: &mut String, b: &NodeBox, s: &NodeStyle) {
    let paint = |o: &mut Out| {
        o.s(" fill=\"")
            .c(s.fill)
            .s("\" stroke=\"")
            .c(s.stroke)
            .s("\" stroke-width=\"")
            .n(s.stroke_width)
            .s("\"");
        if s.dashed {
            o.s(" stroke-dasharray=\"5,3\"");
        }
        o.s("/>\n");
    };
    let rect = |out: &mut String, x: f64, y: f64, w: f64, h: f64, rx: f64| {
        let mut o = Out(out);
        o.s("<rect x=\"")
            .n(x)
            .s("\" y=\"")
            .n(y)
            .s("\" width=\"")
            .n(w)
            .s("\" height=\"")
            .n(h)
            .s("\" rx=\"")
            .n(rx)
            .s("\"");
        paint(&mut o);
    };
    match s.shape {
        Shape::Box => rect(out, b.x, b.y, b.w, b.h, 0.0),
        Shape::Rounded => rect(out, b.x, b.y, b.w, b.h, 6.0),
        Shape::Pill => rect(out, b.x, b.y, b.w, b.h, b.h / 2.0),
        Shape::Stack => {
            rect(out, b.x + 4.0, b.y + 4.0, b.w - 4.0, b.h - 4.0, 6.0);
            rect(out, b.x, b.y, b.w - 4.0, b.h - 4.0, 6.0);
        }
        Shape::Ellipse => {
            let c = b.centre();
            let mut o = Out(out);
            o.s("<ellipse cx=\"")
                .n(c.x)
                .s("\" cy=\"")
                .n(c.y)
                .s("\" rx=\"")
                .n(b.w / 2.0)
                .s("\" ry=\"")
                .n(b.h / 2.0)
                .s("\"");
            paint(&mut o);
        }
    }
}

/// ` class="X path"` on the highlighted path, `class="X" opacity=".."`
/// off it when something is highlighted, plain `class="X"` otherwise.
fn class(o: &mut Out, kind: &str, lit_view: bool, on_path: bool) {
    o.s(" class=\"").s(kind);
    if on_path {
        o.s(" path\"");
    } else if lit_view {
        o.s("\" opacity=\"")
            .n(style::opacity(lit_view, on_path))
            .s("\"");
    } else {
        o.s("\"");
    }
}

fn node(out: &mut String, i: usize, n: &ViewNode, b: &NodeBox, lit_view: bool, view: &View) {
    let mark = view.diff.as_ref().and_then(|d| d.node(i));
    let row_marks = view
        .diff
        .as_ref()
        .map(|d| d.rows_of(i, n.rows.len()))
        .unwrap_or_default();
    let mut s = style::view_node_style(n);
    if let Some(m) = mark {
        s = style::diff_node_style(s, m);
    }
    let ghost = if mark == Some(crate::graph::DiffMark::Removed) {
        " opacity=\"0.6\""
    } else {
        ""
    };
    let mut o = Out(out);
    o.s("<g");
    class(&mut o, "node", lit_view, n.highlight);
    o.s(ghost)
        .s(" id=\"n")
        .u(i)
        .s("\"><title>")
        .e(&n.title)
        .s("</title>\n");
    shape(out, b, &s);
    // Centre labels on the front box (groups keep 4 px for the shadow box).
    let inner_w = if s.shape == Shape::Stack {
        b.w - 4.0
    } else {
        b.w
    };
    let cx = b.x + inner_w / 2.0;
    let mut top = b.y + PAD;
    if s.shape == Shape::Ellipse {
        top += 3.0;
    }
    for (li, line) in n.lines.iter().enumerate() {
        let (size, weight, colour) = if li == 0 {
            (
                NAME_SIZE,
                if s.bold { " font-weight=\"bold\"" } else { "" },
                s.text,
            )
        } else {
            (TEXT_SIZE, "", if s.text == PAPER { PAPER } else { MUTED })
        };
        Out(out)
            .s("<text x=\"")
            .n(cx)
            .s("\" y=\"")
            .n(top + size * 1.02)
            .s("\" font-size=\"")
            .n(size)
            .s("\" text-anchor=\"middle\" fill=\"")
            .c(colour)
            .s("\"")
            .s(weight)
            .s(">")
            .e(line)
            .s("</text>\n");
        top += line_height(size);
    }
    if !n.rows.is_empty() {
        let hy = b.y + header_height(n);
        let _ = writeln!(
            out,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"1\"/>",
            f(b.x),
            f(hy),
            f(b.x + b.w),
            f(hy),
            hex(s.stroke)
        );
        for (ri, r) in n.rows.iter().enumerate() {
            let row_mark = row_marks.get(ri).copied().flatten();
            if let Some(m) = row_mark {
                // A tinted band behind the row, one line high so that
                // bands of neighbouring rows do not overlap; a removed rule
                // struck out.
                let band = line_height(TEXT_SIZE);
                let _ = writeln!(
                    out,
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" fill-opacity=\"0.18\"/>",
                    f(b.x + 1.0),
                    f(b.y + row_centre(n, ri) - band / 2.0),
                    f(b.w - 2.0),
                    f(band),
                    hex(style::diff_colour(m))
                );
            }
            let strike = if row_mark == Some(crate::graph::DiffMark::Removed) {
                " text-decoration=\"line-through\""
            } else {
                ""
            };
            Out(out)
                .s("<g><title>")
                .e(&r.title)
                .s("</title><text x=\"")
                .n(b.x + PAD)
                .s("\" y=\"")
                .n(b.y + row_centre(n, ri) + TEXT_SIZE * 0.35)
                .s("\" font-size=\"")
                .n(TEXT_SIZE)
                .s("\" fill=\"")
                .c(row_mark.map_or(INK, style::diff_colour))
                .s("\"")
                .s(strike)
                // Monospace bold keeps the advance width: the row still fits.
                .s(if r.highlight {
                    " font-weight=\"bold\""
                } else {
                    ""
                })
                .s(">")
                .e(&r.text)
                .s("</text></g>\n");
        }
    }
    out.push_str("</g>\n");
}

/// A path's `d` attribute: `M x y`, then `L x y` or `C` with its points.
fn push_path_d(o: &mut Out, points: &[Point], curved: bool) {
    for (k, p) in points.iter().enumerate() {
        let cmd = if k == 0 {
            "M "
        } else if curved {
            if k % 3 == 1 { " C " } else { " " }
        } else {
            " L "
        };
        o.s(cmd).n(p.x).s(" ").n(p.y);
    }
}

/// The arrow head at the end of a path: a filled triangle.
fn head(points: &[Point]) -> Option<[Point; 3]> {
    let tip = *points.last()?;
    let from = points
        .iter()
        .rev()
        .skip(1)
        .find(|p| (p.x - tip.x).abs() + (p.y - tip.y).abs() > 0.5)?;
    let (dx, dy) = (tip.x - from.x, tip.y - from.y);
    let len = (dx * dx + dy * dy).sqrt();
    let (ux, uy) = (dx / len, dy / len);
    let (l, w) = (9.0, 4.0);
    let base = Point::new(tip.x - ux * l, tip.y - uy * l);
    Some([
        tip,
        Point::new(base.x - uy * w, base.y + ux * w),
        Point::new(base.x + uy * w, base.y - ux * w),
    ])
}

fn edge_svg(out: &mut String, i: usize, view: &View, layout: &Layout, lit_view: bool) {
    let e = &view.edges[i];
    let p = &layout.edges[i];
    if p.points.len() < 2 {
        return;
    }
    let s = style::view_edge_style(view, e);
    let width = s.width * e.weight;
    let dash = s
        .dash
        .dasharray()
        .map(|d| format!(" stroke-dasharray=\"{d}\""))
        .unwrap_or_default();
    let mut o = Out(out);
    o.s("<g");
    class(&mut o, "edge", lit_view, e.highlight);
    o.s("><title>").e(&e.title).s("</title>\n<path d=\"");
    push_path_d(&mut o, &p.points, p.curved);
    o.s("\" fill=\"none\" stroke=\"")
        .c(s.colour)
        .s("\" stroke-width=\"")
        .n(width)
        .s("\"")
        .s(&dash)
        .s(" stroke-linejoin=\"round\"/>\n");
    if let Some(tip) = head(&p.points) {
        arrowhead(out, tip, s.colour);
    }
    out.push_str("</g>\n");
}

fn edge_label(out: &mut String, i: usize, view: &View, layout: &Layout, lit_view: bool) {
    let e = &view.edges[i];
    let p = &layout.edges[i];
    if let Some(c) = p.label {
        let dim = if lit_view && !e.highlight {
            format!(" opacity=\"{}\"", f(style::DIMMED))
        } else {
            String::new()
        };
        let weight = if e.highlight {
            " font-weight=\"bold\""
        } else {
            ""
        };
        Out(out)
            .s("<g")
            .s(&dim)
            .s("><title>")
            .e(&e.title)
            .s("</title><text x=\"")
            .n(c.x)
            .s("\" y=\"")
            .n(c.y + TEXT_SIZE * 0.35)
            .s("\" font-size=\"")
            .n(TEXT_SIZE)
            .s("\" text-anchor=\"middle\" fill=\"")
            .c(INK)
            .s("\" stroke=\"")
            .c(PAPER)
            .s("\" stroke-width=\"3\" stroke-linejoin=\"round\" paint-order=\"stroke\"")
            .s(weight)
            .s(">")
            .e(&e.label)
            .s("</text></g>\n");
    }
}

fn edge_sample(out: &mut String, x: f64, y: f64, s: &EdgeStyle) {
    let dash = match s.dash {
        Dash::Solid => String::new(),
        d => format!(" stroke-dasharray=\"{}\"", d.dasharray().unwrap_or("")),
    };
    let _ = writeln!(
        out,
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"{}\"{dash}/>",
        f(x),
        f(y),
        f(x + 22.0),
        f(y),
        hex(s.colour),
        f(s.width)
    );
    if let Some(tip) = head(&[Point::new(x, y), Point::new(x + 28.0, y)]) {
        arrowhead(out, tip, s.colour);
    }
}

/// A filled triangle for the end of an edge.
fn arrowhead(out: &mut String, [a, b, c]: [Point; 3], colour: style::Rgb) {
    Out(out)
        .s("<polygon points=\"")
        .n(a.x)
        .s(",")
        .n(a.y)
        .s(" ")
        .n(b.x)
        .s(",")
        .n(b.y)
        .s(" ")
        .n(c.x)
        .s(",")
        .n(c.y)
        .s("\" fill=\"")
        .c(colour)
        .s("\"/>\n");
}

/// The title and legend band above the graph; returns its height.
fn header(out: &mut String, view: &View, width: f64) -> f64 {
    let mut y = 10.0;
    if !view.title.is_empty() {
        let _ = writeln!(
            out,
            "<text x=\"16\" y=\"{}\" font-size=\"15\" font-weight=\"bold\" fill=\"{}\">{}</text>",
            f(y + 15.0),
            hex(INK),
            Escaped(&view.title)
        );
        y += 24.0;
    }
    let entries = style::legend_for(view);
    let _ = writeln!(out, "<g class=\"legend\">");
    let (mut x, row_h) = (16.0, 24.0);
    y += 4.0;
    for e in &entries {
        let w = 34.0 + text_width(&e.label, TEXT_SIZE) + 18.0;
        if x + w > width - 16.0 && x > 16.0 {
            x = 16.0;
            y += row_h;
        }
        match &e.item {
            LegendItem::Node(s) => {
                let b = NodeBox {
                    x,
                    y: y + 2.0,
                    w: 28.0,
                    h: 16.0,
                };
                shape(out, &b, s);
            }
            LegendItem::Edge(s) => edge_sample(out, x, y + 10.0, s),
        }
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" font-size=\"{}\" fill=\"{}\">{}</text>",
            f(x + 34.0),
            f(y + 14.0),
            f(TEXT_SIZE),
            hex(INK),
            Escaped(&e.label)
        );
        x += w;
    }
    out.push_str("</g>\n");
    y + row_h + 8.0
}

/// The whole SVG document of a laid-out view.
pub fn svg(view: &View, layout: &Layout) -> String {
    let mut body = String::with_capacity(256 * (view.nodes.len() + view.edges.len()) + 4096);
    let width = style::page_width(&view.title, layout.width);
    let mut head_band = String::new();
    let top = header(&mut head_band, view, width);
    let height = top + layout.height.max(40.0);
    let _ = writeln!(
        body,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"{FONT_FAMILY}\">",
        w = f(width),
        h = f(height)
    );
    let _ = writeln!(
        body,
        "<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"{}\"/>",
        f(width),
        f(height),
        hex(PAPER)
    );
    body.push_str(&head_band);
    let _ = writeln!(body, "<g transform=\"translate(0,{})\">", f(top));
    if view.nodes.is_empty() {
        let _ = writeln!(
            body,
            "<text x=\"16\" y=\"24\" font-size=\"{}\" fill=\"{}\">nothing to show</text>",
            f(TEXT_SIZE),
            hex(MUTED)
        );
    }
    for c in &layout.clusters {
        let b = &c.bbox;
        let _ = writeln!(
            body,
            "<g class=\"cluster\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"8\" fill=\"{}\" stroke=\"{}\" stroke-width=\"1\"/><text x=\"{}\" y=\"{}\" font-size=\"13\" font-weight=\"bold\" fill=\"{}\">{}</text></g>",
            f(b.x),
            f(b.y),
            f(b.w),
            f(b.h),
            hex(style::cluster_fill(&c.table)),
            hex(style::table_stroke(&c.table)),
            f(c.caption.x),
            f(c.caption.y),
            hex(style::table_stroke(&c.table)),
            Escaped(&c.label)
        );
    }
    // Edges first so boxes sit on top of lines; labels last, above both.
    // A highlighted path is drawn after the rest, so that it stays on top.
    let lit_view = view.has_highlight();
    let n_edges = view.edges.len().min(layout.edges.len());
    let order: Vec<usize> = (0..n_edges)
        .filter(|&i| !view.edges[i].highlight)
        .chain((0..n_edges).filter(|&i| view.edges[i].highlight))
        .collect();
    body.push_str("<g class=\"edges\">\n");
    for &i in &order {
        edge_svg(&mut body, i, view, layout, lit_view);
    }
    body.push_str("</g>\n<g class=\"nodes\">\n");
    for (i, (n, b)) in view.nodes.iter().zip(&layout.nodes).enumerate() {
        node(&mut body, i, n, b, lit_view, view);
    }
    body.push_str("</g>\n<g class=\"labels\">\n");
    for &i in &order {
        edge_label(&mut body, i, view, layout, lit_view);
    }
    body.push_str("</g>\n</g>\n</svg>\n");
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_commands() {
        let p = [Point::new(0.0, 0.0), Point::new(1.0, 2.0)];
        let mut d = String::new();
        push_path_d(&mut Out(&mut d), &p, false);
        assert_eq!(d, "M 0.0 0.0 L 1.0 2.0");
        assert!(head(&p).is_some());
    }

    /// Colours append as `hex` formats them.
    #[test]
    fn appended_colours_match_hex() {
        for c in [(0, 0, 0), (255, 0, 16), (0x12, 0xab, 0xf0)] {
            let mut s = String::new();
            Out(&mut s).c(c);
            assert_eq!(s, hex(c).to_string());
        }
    }

    /// Coordinates print as `{:.1}` does, ties and all.
    #[test]
    fn one_decimal_matches_std_formatting() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut values = vec![
            0.0,
            -0.0,
            0.25,
            0.35,
            -0.25,
            -0.04,
            0.05,
            12.25,
            1e9 + 0.75,
            5e9,
            f64::NAN,
        ];
        for i in -20_000i64..20_000 {
            values.extend([
                i as f64 / 4.0,
                i as f64 / 20.0,
                i as f64 * 7.2 + 0.05,
                i as f64 / 3.0,
            ]);
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push((x >> 11) as f64 / (1u64 << 40) as f64 * 1000.0);
        }
        let mut appended = String::new();
        for v in values {
            assert_eq!(f(v).to_string(), format!("{v:.1}"), "{v:?}");
            appended.clear();
            Out(&mut appended).n(v);
            assert_eq!(appended, format!("{v:.1}"), "{v:?}");
        }
    }
}
