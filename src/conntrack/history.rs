//! Conntrack over time: one [`Record`] per reading (fill, per-CPU counters,
//! the most pressed NAT tuples), written as JSON lines by `--watch --record`
//! and read back by `--replay`; [`tick`] turns two or more readings into
//! rates, growth and the expected time until the table is full.
//!
//! The figures of a tick depend only on the records, so a replayed session
//! prints what the live one printed.

use serde::{Deserialize, Serialize};

use super::pressure::{Pressure, PressureLevel};
use super::stats::CpuStats;
use super::{Fill, Problem, Rate, Severity, Stats, StatsFormat, problem, rates};

/// Growth is measured over at most this many seconds of history.
pub const GROWTH_WINDOW: f64 = 60.0;

/// One NAT tuple at the time of a reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TupleSample {
    /// `udp 192.168.49.2 -> 10.96.0.10:53`
    pub tuple: String,
    /// Source ports in use.
    pub ports: u64,
    /// Ports in the range.
    pub range_size: u64,
    /// `ports` as a share of the range (or of the limit, when larger).
    pub percent: f64,
    /// Mark.
    pub level: PressureLevel,
    /// The rule that translated it (`MASQUERADE POSTROUTING #1, line 5`),
    /// when the rules were given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// Per-CPU counters of one CPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuRow {
    /// CPU number.
    pub cpu: u32,
    /// Values in the order of [`Record::fields`].
    pub values: Vec<Option<u64>>,
}

/// One reading, as a line of a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// When it was read, in seconds since the Unix epoch.
    pub time: f64,
    /// Table fill (`nf_conntrack_count`, `_max`, `_buckets`), when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill: Option<Fill>,
    /// Which text the counters came from.
    pub format: StatsFormat,
    /// Counter names.
    pub fields: Vec<String>,
    /// Per-CPU counters.
    pub cpus: Vec<CpuRow>,
    /// The most pressed NAT tuples, when the table was read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top: Vec<TupleSample>,
}

impl Record {
    /// A record of counters, fill and pressure read at `time`.
    pub fn new(
        time: f64,
        stats: &Stats,
        fill: Option<Fill>,
        pressure: Option<&Pressure>,
    ) -> Record {
        Record {
            time,
            fill,
            format: stats.format,
            fields: stats.fields.clone(),
            cpus: stats
                .cpus
                .iter()
                .map(|c| CpuRow {
                    cpu: c.cpu,
                    values: c.values.clone(),
                })
                .collect(),
            top: pressure.map_or_else(Vec::new, samples),
        }
    }

    /// The counters as a statistics snapshot.
    pub fn stats(&self, name: &str) -> Stats {
        let n = self.fields.len();
        Stats {
            name: name.into(),
            format: self.format,
            fields: self.fields.clone(),
            cpus: self
                .cpus
                .iter()
                .map(|c| {
                    let mut values = c.values.clone();
                    values.resize(n, None);
                    CpuStats {
                        cpu: c.cpu,
                        values,
                        line: 0,
                    }
                })
                .collect(),
            problems: Vec::new(),
        }
    }
}

/// The tuples of a pressure report as a record keeps them.
pub fn samples(p: &Pressure) -> Vec<TupleSample> {
    p.tuples
        .iter()
        .map(|t| TupleSample {
            tuple: t.label(),
            ports: t.ports,
            range_size: t.range_size,
            percent: round2(t.worst_percent()),
            level: t.level.max(t.limit_level.unwrap_or(PressureLevel::Ok)),
            rule: t
                .rule
                .as_ref()
                .map(|r| format!("{} {} #{}, line {}", r.target, r.chain, r.index, r.line)),
        })
        .collect()
}

/// Seconds since the Unix epoch, now (the time a live reading gets).
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// What changed up to one reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tick {
    /// Time of the reading (seconds since the Unix epoch).
    pub time: f64,
    /// Seconds since the previous reading.
    pub seconds: f64,
    /// Table fill.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fill: Option<Fill>,
    /// Entries per hash bucket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_bucket: Option<f64>,
    /// Entries gained per second over the last [`GROWTH_WINDOW`] seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub growth_per_second: Option<f64>,
    /// Seconds until `nf_conntrack_max` at that growth (only while growing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_to_full: Option<f64>,
    /// Counter changes since the previous reading.
    pub rates: Vec<Rate>,
    /// The most pressed NAT tuples.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub top: Vec<TupleSample>,
}

impl Tick {
    /// Per-second rate of one counter.
    pub fn rate(&self, counter: &str) -> Option<f64> {
        self.rates
            .iter()
            .find(|r| r.counter == counter)
            .map(|r| r.per_second)
    }
}

/// The tick of reading `i` (from 1) of `records`.
pub fn tick(records: &[Record], i: usize) -> Option<Tick> {
    let now = records.get(i)?;
    let prev = records.get(i.checked_sub(1)?)?;
    let seconds = now.time - prev.time;
    let r = rates(&prev.stats("previous"), &now.stats("now"), seconds);
    // Growth over a window of history, not just the last step.
    // Records are in time order (checked when read): a binary search.
    let start = records[..i]
        .partition_point(|r| now.time - r.time > GROWTH_WINDOW)
        .min(i - 1);
    let growth = match (records[start].fill, now.fill) {
        (Some(a), Some(b)) if now.time > records[start].time => {
            Some((b.count as f64 - a.count as f64) / (now.time - records[start].time))
        }
        _ => None,
    };
    let fill = now.fill;
    Some(Tick {
        time: now.time,
        seconds,
        fill,
        per_bucket: fill.and_then(|f| f.per_bucket()),
        growth_per_second: growth,
        seconds_to_full: match (fill, growth) {
            (Some(f), Some(g)) if g > 0.0 && f.max > f.count => Some((f.max - f.count) as f64 / g),
            (Some(f), Some(g)) if g > 0.0 && f.max > 0 => Some(0.0),
            _ => None,
        },
        rates: r,
        top: now.top.clone(),
    })
}

/// Every tick of a recording, in order.
pub fn ticks(records: &[Record]) -> Vec<Tick> {
    (1..records.len())
        .filter_map(|i| tick(records, i))
        .collect()
}

/// A recording read back.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    /// Name used in messages.
    pub name: String,
    /// The records up to the first bad line.
    pub records: Vec<Record>,
    /// The bad line that ended the reading, if any.
    pub problem: Option<Problem>,
}

/// Whether a text looks like a recording (a JSON object first).
pub fn is_recording(input: &[u8]) -> bool {
    let t = super::trim(input);
    t.starts_with(b"{\"time\"")
        || (t.starts_with(b"{") && t.windows(7).take(200).any(|w| w == b"\"time\":"))
}

/// Reads a recording up to its first bad line: a line cut short, with an
/// unknown field, or going back in time ends it with a problem naming it.
pub fn read_recording(input: &[u8], name: &str) -> Recording {
    let mut rec = Recording {
        name: name.into(),
        ..Default::default()
    };
    let lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    let last = lines
        .iter()
        .rposition(|l| !super::trim(l).is_empty())
        .unwrap_or(0);
    for (idx, raw) in lines.iter().enumerate() {
        let line_no = idx as u32 + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if super::trim(raw).is_empty() {
            continue;
        }
        match serde_json::from_slice::<Record>(raw) {
            Ok(r) => {
                if let Some(p) = rec.records.last()
                    && r.time < p.time
                {
                    rec.problem = Some(problem(
                        line_no,
                        raw,
                        0,
                        Severity::Error,
                        format!(
                            "time {} is before the previous record's {}: not one recording in order; {} record(s) read",
                            r.time,
                            p.time,
                            rec.records.len()
                        ),
                    ));
                    break;
                }
                rec.records.push(r);
            }
            Err(e) => {
                let col = e.column().saturating_sub(1);
                let what = e.to_string();
                // serde_json ends its message with the position; ours is in front.
                let what = what
                    .rsplit_once(" at line ")
                    .map_or(what.as_str(), |x| x.0)
                    .to_string();
                let message = if e.is_eof() && idx == last {
                    format!(
                        "the recording ends in the middle of a record (cut short while being written?); {} record(s) before it were read",
                        rec.records.len()
                    )
                } else {
                    format!(
                        "not a recorded reading: {what}; {} record(s) before it were read",
                        rec.records.len()
                    )
                };
                rec.problem = Some(problem(line_no, raw, col, Severity::Error, message));
                break;
            }
        }
    }
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(time: f64, count: u64, failed: u64) -> Record {
        Record {
            time,
            fill: Some(Fill {
                count,
                max: 1000,
                buckets: Some(250),
            }),
            format: StatsFormat::ConntrackS,
            fields: vec!["insert_failed".into(), "drop".into()],
            cpus: vec![CpuRow {
                cpu: 0,
                values: vec![Some(failed), Some(0)],
            }],
            top: Vec::new(),
        }
    }

    #[test]
    fn ticks_give_rates_growth_and_time_to_full() {
        let r = [rec(100.0, 100, 0), rec(102.0, 200, 10), rec(104.0, 300, 30)];
        let t = ticks(&r);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].rate("insert_failed"), Some(5.0));
        assert_eq!(t[1].rate("insert_failed"), Some(10.0));
        // 200 entries in 4 s: 50/s; 700 left: 14 s.
        assert_eq!(t[1].growth_per_second, Some(50.0));
        assert_eq!(t[1].seconds_to_full, Some(14.0));
        assert_eq!(t[1].per_bucket, Some(1.2));
    }

    #[test]
    fn recording_round_trips_and_stops_at_the_bad_line() {
        let r = [rec(1.0, 1, 0), rec(2.0, 2, 1)];
        let mut text = String::new();
        for x in &r {
            text.push_str(&serde_json::to_string(x).unwrap());
            text.push('\n');
        }
        let back = read_recording(text.as_bytes(), "rec");
        assert_eq!(back.records, r);
        assert!(back.problem.is_none());
        assert!(is_recording(text.as_bytes()));

        let cut = &text[..text.len() - 20];
        let back = read_recording(cut.as_bytes(), "rec");
        assert_eq!(back.records.len(), 1);
        let p = back.problem.expect("cut line");
        assert_eq!(p.line, 2);
        assert!(p.message.contains("middle of a record"), "{}", p.message);

        let odd = text.replacen("\"format\"", "\"colour\":1,\"format\"", 2);
        let back = read_recording(odd.as_bytes(), "rec");
        assert_eq!(back.records.len(), 0);
        let p = back.problem.expect("unknown field");
        assert_eq!(p.line, 1);
        assert!(
            p.message.contains("unknown field `colour`"),
            "{}",
            p.message
        );
        assert!(p.column > 1);
    }
}
