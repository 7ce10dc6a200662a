//! Per-CPU conntrack statistics (`conntrack -S`, `/proc/net/stat/nf_conntrack`),
//! what each counter means, and rates between two snapshots.

use serde::Serialize;

use super::{Problem, Problems, Severity, problem, trim};

/// Which text the statistics came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StatsFormat {
    /// `conntrack -S`: decimal `key=value` per CPU.
    ConntrackS,
    /// `/proc/net/stat/nf_conntrack`: header and 32-bit hexadecimal rows.
    Proc,
}

/// One CPU's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CpuStats {
    /// CPU number (row index for the proc table).
    pub cpu: u32,
    /// Values in the order of [`Stats::fields`]; `None` when this row lacks the field.
    pub values: Vec<Option<u64>>,
    /// 1-based input line.
    pub line: u32,
}

/// A statistics snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Input name.
    pub name: String,
    /// Source format.
    pub format: StatsFormat,
    /// Counter names in first-seen order (the set varies by kernel).
    pub fields: Vec<String>,
    /// One row per CPU.
    pub cpus: Vec<CpuStats>,
    /// Bad lines.
    pub problems: Vec<Problem>,
}

/// Counters that are gauges (the same table-wide value on every row), not sums.
fn is_gauge(field: &str) -> bool {
    field == "entries"
}

impl Stats {
    /// Column of a field.
    pub fn field_index(&self, field: &str) -> Option<usize> {
        self.fields.iter().position(|f| f == field)
    }

    /// Sum over CPUs (for `entries`, the largest row value, since every row
    /// repeats the table-wide count).
    pub fn total(&self, field: &str) -> Option<u64> {
        let i = self.field_index(field)?;
        let vals = self
            .cpus
            .iter()
            .filter_map(|c| c.values.get(i).copied().flatten());
        if is_gauge(field) {
            vals.max()
        } else {
            Some(vals.fold(0u64, u64::saturating_add))
        }
    }

    /// Every field with its total, in field order.
    pub fn totals(&self) -> Vec<(String, u64)> {
        self.fields
            .iter()
            .filter_map(|f| self.total(f).map(|t| (f.clone(), t)))
            .collect()
    }

    /// The CPU with the largest value of a field, and that value.
    pub fn worst_cpu(&self, field: &str) -> Option<(u32, u64)> {
        let i = self.field_index(field)?;
        self.cpus
            .iter()
            .filter_map(|c| c.values.get(i).copied().flatten().map(|v| (c.cpu, v)))
            .max_by_key(|&(cpu, v)| (v, std::cmp::Reverse(cpu)))
    }
}

/// Parses either statistics format (detected from the first line).
pub fn parse_stats(input: &[u8], name: &str) -> Stats {
    let mut problems = Problems::default();
    let mut fields: Vec<String> = Vec::new();
    let mut cpus = Vec::new();
    let mut format = StatsFormat::ConntrackS;
    let mut header: Option<Vec<usize>> = None;
    for (idx, raw) in input.split(|&b| b == b'\n').enumerate() {
        let line_no = idx as u32 + 1;
        let line = trim(raw);
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        let Ok(text) = std::str::from_utf8(line) else {
            problems.push(problem(
                line_no,
                raw,
                0,
                Severity::Error,
                "not text (invalid UTF-8)".into(),
            ));
            continue;
        };
        let col_of = |w: &str| (w.as_ptr() as usize).saturating_sub(raw.as_ptr() as usize);
        if text.starts_with("entries") {
            format = StatsFormat::Proc;
            let cols = text
                .split_whitespace()
                .map(|w| intern(&mut fields, w))
                .collect();
            header = Some(cols);
            continue;
        }
        if let Some(cols) = &header {
            let mut values = vec![None; 0];
            let mut ok = true;
            let words: Vec<&str> = text.split_whitespace().collect();
            if words.len() != cols.len() {
                problems.push(problem(
                    line_no,
                    raw,
                    if words.len() > cols.len() {
                        col_of(words[cols.len()])
                    } else {
                        line.len()
                    },
                    Severity::Error,
                    format!(
                        "expected {} hexadecimal columns as in the header, found {}",
                        cols.len(),
                        words.len()
                    ),
                ));
            }
            for (w, &c) in words.iter().zip(cols) {
                match u64::from_str_radix(w, 16) {
                    Ok(v) => {
                        if values.len() <= c {
                            values.resize(c + 1, None);
                        }
                        values[c] = Some(v);
                    }
                    Err(_) => {
                        problems.push(problem(
                            line_no,
                            raw,
                            col_of(w),
                            Severity::Error,
                            format!("expected a hexadecimal number, found `{w}`"),
                        ));
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                cpus.push(CpuStats {
                    cpu: cpus.len() as u32,
                    values,
                    line: line_no,
                });
            }
            continue;
        }
        // conntrack -S: cpu=N key=value ...
        let mut cpu = None;
        let mut values: Vec<Option<u64>> = Vec::new();
        let mut bad = false;
        for w in text.split_whitespace() {
            let Some((k, v)) = w.split_once('=') else {
                problems.push(problem(
                    line_no,
                    raw,
                    col_of(w),
                    Severity::Error,
                    format!("expected key=value, found `{w}`"),
                ));
                bad = true;
                break;
            };
            let Ok(n) = v.parse::<u64>() else {
                problems.push(problem(
                    line_no,
                    raw,
                    col_of(v),
                    Severity::Error,
                    format!("{k}: expected a number, found `{v}`"),
                ));
                bad = true;
                break;
            };
            if k == "cpu" {
                cpu = u32::try_from(n).ok();
                continue;
            }
            let c = intern(&mut fields, k);
            if values.len() <= c {
                values.resize(c + 1, None);
            }
            values[c] = Some(n);
        }
        if bad {
            continue;
        }
        match cpu {
            Some(cpu) => cpus.push(CpuStats {
                cpu,
                values,
                line: line_no,
            }),
            None => problems.push(problem(
                line_no,
                raw,
                0,
                Severity::Error,
                "a statistics line without cpu=N".into(),
            )),
        }
    }
    let n = fields.len();
    for c in &mut cpus {
        c.values.resize(n, None);
    }
    Stats {
        name: name.into(),
        format,
        fields,
        cpus,
        problems: problems.list,
    }
}

fn intern(fields: &mut Vec<String>, f: &str) -> usize {
    match fields.iter().position(|x| x == f) {
        Some(i) => i,
        None => {
            fields.push(f.to_string());
            fields.len() - 1
        }
    }
}

/// How worrying a counter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Zero or informational.
    Ok,
    /// Non-zero total: has happened since boot.
    Notice,
    /// Rising now (non-zero rate), or a non-zero total of a drop counter.
    Warning,
}

/// One counter with its meaning.
#[derive(Debug, Clone, Serialize)]
pub struct HealthItem {
    /// Counter name.
    pub counter: String,
    /// Sum over CPUs.
    pub total: u64,
    /// Per second between two snapshots, when given.
    pub per_second: Option<f64>,
    /// CPU with the largest value.
    pub worst_cpu: Option<u32>,
    /// One of the counters people should look at first.
    pub highlighted: bool,
    /// How worrying it is.
    pub level: Level,
    /// What it means and what usually causes it.
    pub explanation: &'static str,
}

/// Counters highlighted in the health view, in display order.
pub const HIGHLIGHTED: &[&str] = &[
    "insert_failed",
    "drop",
    "early_drop",
    "invalid",
    "search_restart",
];

/// One-line meaning and usual cause of a counter.
pub fn explain(counter: &str) -> &'static str {
    match counter {
        "insert_failed" => {
            "a new connection lost the race to enter the table (same tuple inserted meanwhile): the UDP/DNS insertion race behind 5-second DNS timeouts on Kubernetes nodes"
        }
        "drop" => {
            "packets dropped because no entry could be made: the table is full (count at nf_conntrack_max) or the insertion race was lost"
        }
        "early_drop" => {
            "the table was full, so an old unassured entry was evicted to make room: raise nf_conntrack_max or shorten timeouts"
        }
        "invalid" => {
            "packets conntrack could not track (out-of-window TCP, bad checksum, asymmetric routing, ICMP error for an unknown flow); they match --ctstate INVALID"
        }
        "search_restart" => {
            "lookups restarted because a hash chain changed under them: heavy churn or a table resize; many with a big table hint at too few buckets"
        }
        "error" | "icmp_error" => "ICMP errors or malformed packets that conntrack rejected",
        "clash_resolve" | "clashres" => {
            "insertion races the kernel resolved by reusing the clashing entry: harmless, but shows the UDP race occurs"
        }
        "chaintoolong" | "chainlength" => {
            "entries refused because a hash chain grew too long: a hash flood or too few buckets"
        }
        "found" => "lookups that found an existing entry (normal)",
        "ignore" => {
            "packets conntrack skipped because they were already tracked or untracked (normal)"
        }
        "insert" => "entries inserted (normal; 0 on recent kernels)",
        "new" => "entries created (normal; 0 on recent kernels)",
        "entries" => "entries in the table now",
        "searched" | "delete" | "delete_list" => "kept for compatibility; 0 on recent kernels",
        "expect_new" | "expect_create" | "expect_delete" => "helper expectations (ftp, sip, ...)",
        _ => "",
    }
}

fn is_bad(counter: &str) -> bool {
    matches!(
        counter,
        "insert_failed" | "drop" | "early_drop" | "chaintoolong"
    )
}

/// The counters with explanations; with a previous snapshot, rates too.
pub fn health(stats: &Stats, previous: Option<(&Stats, f64)>) -> Vec<HealthItem> {
    let rate_list = previous.map(|(p, secs)| rates(p, stats, secs));
    let mut items: Vec<HealthItem> = stats
        .fields
        .iter()
        .filter_map(|f| {
            let total = stats.total(f)?;
            let per_second = rate_list
                .as_ref()
                .and_then(|r| r.iter().find(|x| &x.counter == f))
                .map(|r| r.per_second);
            let highlighted = HIGHLIGHTED.contains(&f.as_str()) || is_bad(f);
            let level = if !highlighted {
                Level::Ok
            } else if per_second.is_some_and(|r| r > 0.0) || (is_bad(f) && total > 0) {
                Level::Warning
            } else if total > 0 {
                Level::Notice
            } else {
                Level::Ok
            };
            Some(HealthItem {
                counter: f.clone(),
                total,
                per_second,
                worst_cpu: stats.worst_cpu(f).filter(|w| w.1 > 0).map(|w| w.0),
                highlighted,
                level,
                explanation: explain(f),
            })
        })
        .collect();
    let rank = |c: &str| {
        HIGHLIGHTED
            .iter()
            .position(|h| *h == c)
            .unwrap_or(HIGHLIGHTED.len())
    };
    items.sort_by_key(|i| (!i.highlighted, rank(&i.counter)));
    items
}

/// Change of one counter between two snapshots.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rate {
    /// Counter name.
    pub counter: String,
    /// Increase over the interval (summed per CPU).
    pub delta: u64,
    /// `delta / seconds`.
    pub per_second: f64,
    /// Some CPU's counter went down (reboot or reset); its new value was counted.
    pub reset: bool,
}

/// Rates from snapshot `a` to the later snapshot `b`, `secs` apart. The proc
/// table holds 32-bit counters, so a smaller value there is taken as wrap-around.
pub fn rates(a: &Stats, b: &Stats, secs: f64) -> Vec<Rate> {
    let secs = if secs > 0.0 { secs } else { 1.0 };
    b.fields
        .iter()
        .enumerate()
        .filter(|(_, f)| !is_gauge(f))
        .map(|(bi, f)| {
            let ai = a.field_index(f);
            let mut delta = 0u64;
            let mut reset = false;
            for (k, cb) in b.cpus.iter().enumerate() {
                let vb = cb.values.get(bi).copied().flatten().unwrap_or(0);
                let ca = a.cpus.iter().find(|c| c.cpu == cb.cpu).or(a.cpus.get(k));
                let va = ca.and_then(|c| ai.and_then(|i| c.values.get(i).copied().flatten()));
                match va {
                    Some(va) if vb >= va => delta += vb - va,
                    Some(va) if b.format == StatsFormat::Proc && va <= u32::MAX as u64 => {
                        delta += vb + (1u64 << 32) - va
                    }
                    Some(_) => {
                        reset = true;
                        delta += vb;
                    }
                    None => delta += vb,
                }
            }
            Rate {
                counter: f.clone(),
                delta,
                per_second: delta as f64 / secs,
                reset,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conntrack_s_and_rates() {
        let a = parse_stats(
            b"cpu=0 found=1 insert_failed=2 drop=0\ncpu=1 found=3 insert_failed=0 drop=0\n",
            "a",
        );
        let b = parse_stats(
            b"cpu=0 found=5 insert_failed=12 drop=0\ncpu=1 found=3 insert_failed=0 drop=0\n",
            "b",
        );
        assert!(a.problems.is_empty());
        assert_eq!(a.total("found"), Some(4));
        let r = rates(&a, &b, 2.0);
        let f = r.iter().find(|r| r.counter == "insert_failed").unwrap();
        assert_eq!((f.delta, f.per_second), (10, 5.0));
        let h = health(&b, Some((&a, 2.0)));
        assert_eq!(h[0].counter, "insert_failed");
        assert_eq!(h[0].level, Level::Warning);
    }

    #[test]
    fn proc_hex_wraps() {
        let a = parse_stats(b"entries found\n00000002 fffffff0\n", "a");
        let b = parse_stats(b"entries found\n00000003 00000010\n", "b");
        assert_eq!(a.format, StatsFormat::Proc);
        assert_eq!(b.total("entries"), Some(3));
        let r = rates(&a, &b, 1.0);
        assert_eq!(r[0].delta, 0x20);
    }

    #[test]
    fn bad_rows_have_columns() {
        let s = parse_stats(b"entries found\n00000002 zz\n1\n", "x");
        assert_eq!(s.problems.len(), 2);
        assert_eq!((s.problems[0].line, s.problems[0].column), (2, 10));
        assert_eq!(s.problems[1].line, 3);
    }
}
