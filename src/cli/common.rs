//! Arguments and helpers every subcommand that reads rules shares.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use iptviz::input::{DEFAULT_MAX_INPUT, Source, parse_size, read_source_limited};
use iptviz::model::Family;
use iptviz::parse::{ParseError, ParseOptions, Parsed, parse_owned};

/// Where the rules come from and how to read them.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Rules file (iptables-save, ip6tables-save, iptables -S or iptables -L output); `-` reads stdin.
    #[arg(value_name = "FILE", required_unless_present = "live")]
    pub file: Option<String>,
    /// Read this machine's rules by running `iptables-save -c` and `ip6tables-save -c` (read-only, needs root).
    #[arg(long, conflicts_with = "file")]
    pub live: bool,
    /// Table for `iptables -S` lines that no `*table` or `# iptables -t T -S` line assigns.
    #[arg(long, short = 't', value_name = "TABLE")]
    pub table: Option<String>,
    /// Treat the input as IPv6 (ip6tables) even if nothing in it says so.
    #[arg(long, short = '6')]
    pub ipv6: bool,
    /// Stop at the first syntax error instead of reading on.
    #[arg(long)]
    pub strict: bool,
    /// Refuse inputs larger than this (K, M, G suffixes; default 1G), read
    /// before anything is allocated for them.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_input_size: Option<u64>,
}

/// A parsed input and its name.
pub struct Input {
    pub name: String,
    pub parsed: Parsed,
}

impl Input {
    /// The nft tables of this input, as `FAMILY NAME`.
    pub fn nft_tables(&self) -> Vec<String> {
        let t = &self.parsed.ruleset.nft.tables;
        t.iter()
            .map(|t| format!("{} {}", t.family.as_str(), t.name))
            .collect()
    }

    /// Says on stderr that `cmd` leaves this input's nft tables out (it
    /// reads iptables tables only), so that a clean answer is not taken for
    /// one about them.
    pub fn note_nft_not_analysed(&self, cmd: &str) {
        let t = self.nft_tables();
        if !t.is_empty() {
            eprintln!(
                "iptviz {cmd}: {}: {} nftables table{} not analysed ({}): {cmd} reads iptables tables only",
                self.name,
                t.len(),
                if t.len() == 1 { "" } else { "s" },
                t.join(", ")
            );
        }
    }
}

impl InputArgs {
    fn source(&self) -> Source {
        if self.live {
            Source::Live
        } else {
            Source::from_arg(self.file.as_deref().unwrap_or("-"))
        }
    }

    /// Reads and parses every text the source gives (live gives two).
    pub fn load(&self, strict: bool) -> Result<Vec<Input>, LoadError> {
        let limit = self.max_input_size.unwrap_or(DEFAULT_MAX_INPUT);
        let loaded =
            read_source_limited(&self.source(), limit).map_err(|e| LoadError::Read(e.into()))?;
        let mut out = Vec::new();
        for l in loaded {
            let opts = ParseOptions {
                source_name: l.name.clone(),
                strict: strict || self.strict,
                table: self.table.clone(),
                family: (self.ipv6 || l.name.contains("ip6tables")).then_some(Family::Ipv6),
                ..Default::default()
            };
            let parsed = parse_owned(l.bytes, &opts).map_err(LoadError::Parse)?;
            out.push(Input {
                name: l.name,
                parsed,
            });
        }
        Ok(out)
    }
}

/// Why rules could not be loaded.
pub enum LoadError {
    /// Nothing could be read.
    Read(anyhow::Error),
    /// Read, but not parseable (binary, empty, strict syntax error).
    Parse(ParseError),
}

impl LoadError {
    /// Prints the error and gives the exit code: 2 unreadable, 1 bad content.
    pub fn report(self) -> std::process::ExitCode {
        match self {
            LoadError::Read(e) => {
                eprintln!("iptviz: {e:#}");
                std::process::ExitCode::from(2)
            }
            LoadError::Parse(
                e @ (ParseError::Binary { .. }
                | ParseError::Empty { .. }
                | ParseError::TooLarge { .. }),
            ) => {
                eprintln!("iptviz: {e}");
                std::process::ExitCode::from(2)
            }
            LoadError::Parse(e) => {
                eprintln!("{e}");
                std::process::ExitCode::from(1)
            }
        }
    }
}

/// The file an output option names, or `None` for standard output (no
/// option, or `-`).
pub fn output_file(path: Option<&PathBuf>) -> Option<&PathBuf> {
    path.filter(|p| p.as_os_str() != "-")
}

/// Where output goes: standard output, or a file written whole or not at
/// all (see [`FileOutput`]).
pub fn open_output(path: Option<&PathBuf>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match output_file(path) {
        Some(p) => Box::new(FileOutput::create(p)?),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    })
}

/// An output file written to a temporary file beside it and renamed over
/// it by `flush()`, so that a failed or interrupted run never leaves an
/// empty or partial file behind; dropped unflushed, the temporary file is
/// removed. Errors name the file. Something other than a regular file (a
/// device, a pipe) is written directly.
pub struct FileOutput {
    w: std::io::BufWriter<std::fs::File>,
    dest: PathBuf,
    /// The temporary file while the output is not yet in place.
    tmp: Option<PathBuf>,
}

impl FileOutput {
    /// Starts writing `dest`.
    pub fn create(dest: &std::path::Path) -> anyhow::Result<FileOutput> {
        let shown = dest.display();
        match std::fs::metadata(dest) {
            Ok(m) if m.is_dir() => anyhow::bail!("cannot write {shown}: it is a directory"),
            Ok(m) if !m.is_file() => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(dest)
                    .with_context(|| format!("cannot write {shown}"))?;
                return Ok(FileOutput {
                    w: std::io::BufWriter::new(f),
                    dest: dest.to_path_buf(),
                    tmp: None,
                });
            }
            _ => {}
        }
        let file_name = dest
            .file_name()
            .with_context(|| format!("cannot write {shown}: not a file name"))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(file_name);
        tmp_name.push(format!(".iptviz-{}.tmp", std::process::id()));
        let tmp = dest.with_file_name(tmp_name);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .with_context(|| format!("cannot write {shown}"))?;
        Ok(FileOutput {
            w: std::io::BufWriter::new(f),
            dest: dest.to_path_buf(),
            tmp: Some(tmp),
        })
    }

    fn named(&self, e: std::io::Error) -> std::io::Error {
        std::io::Error::new(
            e.kind(),
            format!("cannot write {}: {e}", self.dest.display()),
        )
    }
}

impl Write for FileOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.w.write(buf).map_err(|e| self.named(e))
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.w.write_all(buf).map_err(|e| self.named(e))
    }

    /// Writes out what is buffered and puts the file in place.
    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush().map_err(|e| self.named(e))?;
        if let Some(tmp) = self.tmp.take() {
            // The data must be on disk before the name points at it.
            if let Err(e) = self.w.get_ref().sync_all() {
                let _ = std::fs::remove_file(&tmp);
                return Err(self.named(e));
            }
            if let Err(e) = std::fs::rename(&tmp, &self.dest) {
                let _ = std::fs::remove_file(&tmp);
                return Err(self.named(e));
            }
        }
        Ok(())
    }
}

impl Drop for FileOutput {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Whether stderr is a terminal (progress and colour only then).
#[allow(dead_code)]
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// How many of an input's problems a command other than `check` prints
/// before it sums up the rest: a dump with thousands of bad lines should
/// not bury the command's own output.
pub const PROBLEMS_SHOWN: usize = 20;

/// Prints the problems of `name` (only its errors when `errors_only`) on
/// stderr, at most [`PROBLEMS_SHOWN`] of them, then one line counting the
/// rest and naming the command that lists them all.
pub fn report_problems(problems: &[iptviz::parse::Problem], name: &str, errors_only: bool) {
    let wanted =
        |p: &&iptviz::parse::Problem| !errors_only || p.severity == iptviz::parse::Severity::Error;
    let mut rest_errors = 0usize;
    let mut rest_warnings = 0usize;
    for (n, p) in problems.iter().filter(wanted).enumerate() {
        if n < PROBLEMS_SHOWN {
            eprintln!("{}", p.render(name));
        } else if p.severity == iptviz::parse::Severity::Error {
            rest_errors += 1;
        } else {
            rest_warnings += 1;
        }
    }
    if rest_errors + rest_warnings > 0 {
        eprintln!("{}", more_problems_line(name, rest_errors, rest_warnings));
    }
}

/// The line that stands for the problems not printed.
fn more_problems_line(name: &str, errors: usize, warnings: usize) -> String {
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let what = match (errors, warnings) {
        (e, 0) => count(e, "more error"),
        (0, w) => count(w, "more warning"),
        (e, w) => format!("{} and {}", count(e, "more error"), count(w, "warning")),
    };
    let file = if name.starts_with("live:") {
        "--live".to_string()
    } else if name == "-" || name.starts_with('<') {
        "FILE".to_string()
    } else {
        shell_word(name)
    };
    format!("iptviz: {name}: {what} not shown; `iptviz check {file}` lists them all")
}

/// `s` as one shell word: as it is when it holds nothing the shell reads
/// specially, else in single quotes.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:+=@%,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_problems_line_counts_and_names_the_check_command() {
        assert_eq!(
            more_problems_line("a.rules", 3, 0),
            "iptviz: a.rules: 3 more errors not shown; `iptviz check a.rules` lists them all"
        );
        assert_eq!(
            more_problems_line("my dump", 1, 2),
            "iptviz: my dump: 1 more error and 2 warnings not shown; `iptviz check 'my dump'` lists them all"
        );
        assert!(
            more_problems_line("<stdin>", 0, 1)
                .contains("1 more warning not shown; `iptviz check FILE`")
        );
        assert!(
            more_problems_line("live: iptables-save -c", 5, 0).contains("`iptviz check --live`")
        );
    }
}
