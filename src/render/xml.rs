//! XML escaping, the one place that knows which characters SVG text, SVG
//! attributes and graphviz's HTML-like labels must not carry as they are.

/// Appends `c` to `out` as XML 1.0 allows it in content and in quoted
/// attribute values: the five markup characters as entities, newline and
/// tab kept, the other characters XML 1.0 forbids (C0 controls, U+FFFE,
/// U+FFFF) dropped.
pub fn push_escaped(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '"' => out.push_str("&quot;"),
        '\'' => out.push_str("&#39;"),
        '\n' | '\t' => out.push(c),
        c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
        c => out.push(c),
    }
}

/// Appends `c` to `out` for a graphviz HTML-like label: as
/// [`push_escaped`] does, square brackets as character references too, and
/// no control character at all (graphviz takes no tab or newline there).
pub fn push_html_label(out: &mut String, c: char) {
    match c {
        ']' => out.push_str("&#93;"),
        '[' => out.push_str("&#91;"),
        c if c.is_control() => {}
        c => push_escaped(out, c),
    }
}

/// Whether byte `b` may start a character that [`push_escaped`] changes:
/// a markup character, a control, or the lead byte of U+FFFE/U+FFFF.
fn may_change(b: u8) -> bool {
    MAY_CHANGE[usize::from(b)]
}

/// [`may_change`] as a table: escaping scans every byte of every label.
const MAY_CHANGE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = matches!(c, b'&' | b'<' | b'>' | b'"' | b'\'' | 0xef)
            || (c < 0x20 && c != b'\n' && c != b'\t');
        b += 1;
    }
    t
};

/// Appends `s` to `out` escaped as [`push_escaped`] does, copying the runs
/// between characters that change in one piece (drawings carry hundreds of
/// thousands of labels, nearly all plain).
pub fn push_str_escaped(out: &mut String, s: &str) {
    let mut rest = s;
    while let Some(at) = rest.bytes().position(may_change) {
        out.push_str(&rest[..at]);
        let c = rest[at..].chars().next().expect("a character starts here");
        push_escaped(out, c);
        rest = &rest[at + c.len_utf8()..];
    }
    out.push_str(rest);
}

/// `s` escaped for XML content and attribute values (see [`push_escaped`]).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_str_escaped(&mut out, s);
    out
}

/// `s` escaped as [`escape`] does, written where it is formatted, with
/// no string of its own.
pub struct Escaped<'a>(pub &'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut rest = self.0;
        let mut one = String::new();
        while let Some(at) = rest.bytes().position(may_change) {
            out.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().expect("a character starts here");
            one.clear();
            push_escaped(&mut one, c);
            out.write_str(&one)?;
            rest = &rest[at + c.len_utf8()..];
        }
        out.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_controls() {
        assert_eq!(
            escape("</text><script>alert(1)</script>"),
            "&lt;/text&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(escape("a\u{1}b&\"'"), "ab&amp;&quot;&#39;");
        assert_eq!(escape("a\nb\tc\u{fffe}"), "a\nb\tc");
    }

    /// The run-copying escape and its formatted form agree with escaping
    /// one character at a time, on text mixing every kind of character
    /// (U+FEFF shares U+FFFE's lead byte and is kept).
    #[test]
    fn escaping_by_runs_matches_escaping_each_character() {
        let samples = [
            "",
            "plain",
            "a&b<c>d\"e'f",
            "\u{1}\u{1f}x\u{7f}",
            "é\u{feff}\u{fffe}\u{ffff}\u{fffd}z",
            "KUBE-SVC-ABC → 10.0.0.1:80 \t\n&&",
        ];
        for s in samples {
            let mut each = String::new();
            for c in s.chars() {
                push_escaped(&mut each, c);
            }
            assert_eq!(escape(s), each, "{s:?}");
            assert_eq!(Escaped(s).to_string(), each, "{s:?}");
        }
    }
}
