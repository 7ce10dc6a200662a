//! Arguments and helpers every subcommand that reads rules shares.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use iptviz::input::{Source, read_source};
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
}

/// A parsed input and its name.
pub struct Input {
    pub name: String,
    pub parsed: Parsed,
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
        let loaded = read_source(&self.source()).map_err(|e| LoadError::Read(e.into()))?;
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

/// Where output goes.
pub fn open_output(path: Option<&PathBuf>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match path {
        Some(p) if p.as_os_str() != "-" => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
        )),
        _ => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    })
}

/// Whether stderr is a terminal (progress and colour only then).
#[allow(dead_code)]
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}
