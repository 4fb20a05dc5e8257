//! The command line: parsing arguments and running one analysis.
//!
//! ```text
//! trace-analyzer [--names FILE] [--syscall NR|NAME] [--pid TASK] [--chrome OUT.json]
//!                [--html OUT.html] [--arch x86_64|aarch64] [--max-chains N] TRACE
//! ```
//!
//! Options take their value as the next argument or after `=`. `TRACE` may be `-` for
//! standard input. It owns the mapping from arguments to [`model::Options`], [`ChainFilter`] and
//! output files, and nothing else: parsing never touches the file system, and [`run`] reads
//! the inputs, writes the requested exports and returns the report; printing it is
//! `main`'s job. Invariant: every bad argument is an error message naming it, never a panic.

use crate::names::{parse_u32, Names};
use crate::report::ChainFilter;
use crate::syscalls::{parse_arch, SyscallFilter};
use crate::{chrome, html, input, model, report};
use abi::syscall::Arch;
use std::io::Read;
use std::path::PathBuf;

/// The `--help` text.
pub const USAGE: &str = "\
trace-analyzer: analyze a Cairn trace (binary stream or console transcript)

USAGE:
    trace-analyzer [OPTIONS] TRACE

TRACE is a binary trace stream (starts with the magic CAIRNTRC; per-CPU dumps may be
concatenated) or a console transcript holding `@@TRACE <base64>` lines and optional
`@@TRACE-NAME endpoint 3 vfs` / `@@TRACE-NAME task 5 linux` lines. `-` reads standard input.

OPTIONS:
    --names FILE          names for endpoints, tasks and opcodes, one per line:
                            endpoint <index> <name>
                            task <slot> <name>
                            opcode <endpoint> <opcode> <name>
                          (`#` starts a comment; these override transcript names)
    --syscall NR|NAME     print only the causal chains of this syscall (a name matches
                          it on both architectures, a number matches that number)
    --pid TASK            print only the chains of this task (slot number or name)
    --chrome OUT.json     write Chrome trace-event JSON (open it in ui.perfetto.dev)
    --html OUT.html       write a self-contained HTML timeline
    --arch x86_64|aarch64 name syscall numbers with this table (default: the arch
                          field of each SyscallEnter record, else the stream header)
    --max-chains N        print at most N causal chains
    -h, --help            print this help

The report lists messages per endpoint and opcode with send->reply latency
percentiles, syscall latency percentiles, busy time per task and per CPU (name the
idle task `idle`, e.g. `task 0 idle`, so it does not count as busy), server starts,
deaths, restarts, task exits and fault injections, requests never answered, messages
to dead servers, and the causal chain of each syscall. Filters select chains only.
Exit status: 0 on success, 1 if the input cannot be read or holds no trace, 2 for a
bad command line.
";

/// What the command line asks for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cli {
    /// `--names FILE`.
    pub names: Option<PathBuf>,
    /// `--syscall`.
    pub syscall: Option<SyscallFilter>,
    /// `--pid`: a slot number or a task name, resolved once names are known.
    pub pid: Option<String>,
    /// `--chrome OUT.json`.
    pub chrome: Option<PathBuf>,
    /// `--html OUT.html`.
    pub html: Option<PathBuf>,
    /// `--arch`.
    pub arch: Option<Arch>,
    /// `--max-chains N`.
    pub max_chains: Option<usize>,
    /// The trace file (`-`: standard input).
    pub trace: PathBuf,
}

/// The result of parsing the arguments.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Analyze.
    Run(Cli),
    /// Print [`USAGE`].
    Help,
}

/// Parses the arguments (without the program name).
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut cli = Cli::default();
    let mut trace = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        if !arg.starts_with("--") {
            if trace.replace(PathBuf::from(&arg)).is_some() {
                return Err(format!("more than one TRACE given (`{arg}`)"));
            }
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let known = ["--names", "--syscall", "--pid", "--chrome", "--html", "--arch", "--max-chains"];
        if !known.contains(&name.as_str()) {
            return Err(format!("unknown option `{name}` (see --help)"));
        }
        let value = match inline {
            Some(v) => v,
            None => args.next().ok_or_else(|| format!("option `{name}` needs a value"))?,
        };
        match name.as_str() {
            "--names" => cli.names = Some(PathBuf::from(value)),
            "--syscall" => cli.syscall = Some(SyscallFilter::parse(&value)?),
            "--pid" => cli.pid = Some(value),
            "--chrome" => cli.chrome = Some(PathBuf::from(value)),
            "--html" => cli.html = Some(PathBuf::from(value)),
            "--arch" => {
                cli.arch =
                    Some(parse_arch(&value).ok_or_else(|| format!("unknown arch `{value}` (x86_64 or aarch64)"))?)
            }
            _ => cli.max_chains = Some(value.parse().map_err(|_| format!("bad --max-chains value `{value}`"))?),
        }
    }
    cli.trace = trace.ok_or("no TRACE given (see --help)")?;
    Ok(Command::Run(cli))
}

fn read(path: &PathBuf) -> Result<Vec<u8>, String> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).map_err(|e| format!("reading standard input: {e}"))?;
        return Ok(bytes);
    }
    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

/// Resolves `--pid`: a slot number, or the (given or derived) name of exactly one task.
fn resolve_task(a: &model::Analysis, pid: &str) -> Result<u32, String> {
    if let Some(slot) = parse_u32(pid) {
        return Ok(slot);
    }
    let slots: Vec<u32> = a.task_names.iter().filter(|(_, n)| n.as_str() == pid).map(|(&t, _)| t).collect();
    match slots.as_slice() {
        [one] => Ok(*one),
        [] => Err(format!("--pid `{pid}`: no task has that name")),
        many => Err(format!("--pid `{pid}`: several tasks have that name: {many:?}")),
    }
}

/// Runs one analysis: reads the inputs, writes the exports, returns the report text and the
/// list of files written.
pub fn run(cli: &Cli) -> Result<(String, Vec<PathBuf>), String> {
    let bytes = read(&cli.trace)?;
    let mut trace = input::load(&bytes).map_err(|e| format!("{}: {e}", cli.trace.display()))?;
    if let Some(path) = &cli.names {
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let names = Names::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        trace.names.merge(names);
    }
    let analysis = model::analyze(&trace, &model::Options { arch: cli.arch });
    let task = cli.pid.as_deref().map(|p| resolve_task(&analysis, p)).transpose()?;
    let filter = ChainFilter { syscall: cli.syscall.clone(), task, max: cli.max_chains };
    let text = report::full(&analysis, &filter);
    let mut written = Vec::new();
    if let Some(path) = &cli.chrome {
        std::fs::write(path, chrome::export(&analysis)).map_err(|e| format!("writing {}: {e}", path.display()))?;
        written.push(path.clone());
    }
    if let Some(path) = &cli.html {
        std::fs::write(path, html::export(&analysis, &text)).map_err(|e| format!("writing {}: {e}", path.display()))?;
        written.push(path.clone());
    }
    Ok((text, written))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_every_option() {
        let Command::Run(cli) = parse(args(
            "--names n.txt --syscall read --pid linux --chrome o.json --html=o.html --arch arm64 --max-chains 3 t.bin",
        ))
        .unwrap() else {
            panic!("not a run")
        };
        assert_eq!(cli.names, Some(PathBuf::from("n.txt")));
        assert_eq!(cli.syscall, Some(SyscallFilter::Name("read".into())));
        assert_eq!(cli.pid.as_deref(), Some("linux"));
        assert_eq!(cli.chrome, Some(PathBuf::from("o.json")));
        assert_eq!(cli.html, Some(PathBuf::from("o.html")));
        assert_eq!(cli.arch, Some(Arch::Aarch64));
        assert_eq!(cli.max_chains, Some(3));
        assert_eq!(cli.trace, PathBuf::from("t.bin"));
        assert_eq!(parse(args("t.bin --help")).unwrap(), Command::Help);
    }

    #[test]
    fn rejects_bad_arguments() {
        for bad in ["", "--arch mips t", "--syscall nosuchcall t", "--frob t", "a b", "t --names", "--max-chains x t"] {
            assert!(parse(args(bad)).is_err(), "accepted `{bad}`");
        }
    }
}
