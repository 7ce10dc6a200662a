//! `iptviz completions` and `iptviz manpages`: what a packaged command
//! line tool installs beside its binary.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Command, CommandFactory};
use clap_complete::Shell;

use super::Cli;

/// `iptviz completions`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  iptviz completions bash > /usr/share/bash-completion/completions/iptviz
  iptviz completions zsh > \"${fpath[1]}/_iptviz\"
  iptviz completions fish > ~/.config/fish/completions/iptviz.fish")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

/// `iptviz manpages`
#[derive(Debug, Args)]
#[command(after_help = "Example:
  iptviz manpages /usr/local/share/man/man1 && man iptviz-diff")]
pub struct ManpagesArgs {
    /// Directory to write iptviz.1 and one iptviz-COMMAND.1 per subcommand into.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

/// Runs `completions`.
pub fn completions(a: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "iptviz", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

fn write_page(cmd: Command, dir: &Path, name: &str) -> anyhow::Result<()> {
    let path = dir.join(format!("{name}.1"));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buf)?;
    std::fs::write(&path, buf).with_context(|| format!("cannot write {}", path.display()))?;
    println!("{}", path.display());
    Ok(())
}

/// Runs `manpages`.
pub fn manpages(a: ManpagesArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&a.dir)
        .with_context(|| format!("cannot create {}", a.dir.display()))?;
    let mut cmd = Cli::command();
    cmd.build();
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let name = format!("iptviz-{}", sub.get_name());
        let page = sub
            .clone()
            .name(name.clone())
            .bin_name(format!("iptviz {}", sub.get_name()))
            .version(cmd.get_version().unwrap_or_default().to_string());
        write_page(page, &a.dir, &name)?;
    }
    write_page(cmd, &a.dir, "iptviz")?;
    Ok(ExitCode::SUCCESS)
}
