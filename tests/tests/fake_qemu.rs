//! The runner against fake "QEMU"s (`sh -c` scripts): transcripts and power-off codes,
//! deadlines, the SIGTERM-then-SIGKILL escalation, process-group kill of stragglers, kill on
//! drop and on parent-thread death, `wait_for`, piped stdin and the echo sink.

use harness::runner::{End, Guest, Input, Options, WaitError, TERM_GRACE};
use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn sh(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", script]);
    c
}

fn spawn(script: &str) -> Guest {
    Guest::spawn(sh(script), Options::default()).expect("spawn sh")
}

/// Whether `pid` is gone (or a zombie, which is as dead as it gets before its reaper runs).
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

fn eventually_dead(pid: u32) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if dead(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The pid a script printed as `bg=<pid>`.
fn bg_pid(line: &str) -> u32 {
    line.trim().strip_prefix("bg=").and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("no pid in {line:?}"))
}

const LONG: Option<Duration> = Some(Duration::from_secs(30));
const GRACE: Duration = Duration::from_secs(10);

#[test]
fn poweroff_marker_and_transcript() {
    let mut g = spawn("echo booting; printf 'Cairn\\r\\n@@POWEROFF 7\\r\\n'; echo 'qemu says hi' >&2; exit 15");
    let out = g.wait(LONG, GRACE);
    assert_eq!(out.end, End::Exited);
    assert_eq!(out.poweroff, Some(7));
    assert_eq!(out.status.and_then(|s| s.code()), Some(15));
    assert_eq!(out.transcript, "booting\nCairn\r\n@@POWEROFF 7\r\n");
    assert_eq!(out.stderr, "qemu says hi\n");
    assert_eq!(out.status_text(), "exit 15");
}

#[test]
fn marker_on_an_unterminated_last_line() {
    let out = spawn("printf 'x\\n@@POWEROFF 2'").wait(LONG, GRACE);
    assert_eq!(out.poweroff, Some(2));
}

#[test]
fn exit_without_marker() {
    let out = spawn("echo hi; echo '/ # echo @@POWEROFF 0'; exit 4").wait(LONG, GRACE);
    assert_eq!(out.end, End::Exited);
    assert_eq!(out.poweroff, None, "a marker after other text on the line does not count");
    assert_eq!(out.status.and_then(|s| s.code()), Some(4));
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let start = Instant::now();
    let mut g = spawn("sleep 300 & echo bg=$!; sleep 300");
    let bg = bg_pid(&g.wait_for("bg=", Duration::from_secs(10)).unwrap());
    let leader = g.pid();
    let out = g.wait(Some(Duration::from_millis(300)), GRACE);
    assert_eq!(out.end, End::Timeout);
    assert!(out.status.is_some_and(|s| !s.success()));
    assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
    assert!(eventually_dead(bg), "background child {bg} survived");
    assert!(dead(leader));
}

#[test]
fn sigterm_ignored_escalates_to_sigkill() {
    let start = Instant::now();
    let mut g = spawn("trap '' TERM; echo ready; while :; do sleep 1; done");
    g.wait_for("ready", Duration::from_secs(10)).unwrap();
    let out = g.wait(Some(Duration::from_millis(100)), GRACE);
    assert_eq!(out.end, End::Timeout);
    let took = start.elapsed();
    assert!(took >= TERM_GRACE && took < TERM_GRACE + Duration::from_secs(5), "took {took:?}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.and_then(|s| s.signal()), Some(9));
}

#[test]
fn stragglers_are_killed_after_a_normal_exit() {
    // The leader exits by itself; a background child holding stdout open must not keep the
    // harness waiting, and must not survive.
    let start = Instant::now();
    let mut g = spawn("sleep 300 & echo bg=$!; echo '@@POWEROFF 0'; exit 0");
    let bg = bg_pid(&g.wait_for("bg=", Duration::from_secs(10)).unwrap());
    let out = g.wait(LONG, GRACE);
    assert_eq!((out.end, out.poweroff), (End::Exited, Some(0)));
    assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
    assert!(eventually_dead(bg), "background child {bg} survived");
}

#[test]
fn hung_after_poweroff_is_killed() {
    let start = Instant::now();
    let out = spawn("echo '@@POWEROFF 0'; exec sleep 300").wait(LONG, Duration::from_millis(300));
    assert_eq!(out.end, End::HungAfterPowerOff);
    assert_eq!(out.poweroff, Some(0));
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn drop_kills() {
    let mut g = spawn("sleep 300 & echo bg=$!; exec sleep 300");
    let bg = bg_pid(&g.wait_for("bg=", Duration::from_secs(10)).unwrap());
    let leader = g.pid();
    let start = Instant::now();
    drop(g);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(eventually_dead(leader) && eventually_dead(bg));
}

#[test]
fn wait_for_consumes_in_order_and_sees_prompts() {
    let mut g = spawn("echo 'one two'; echo three; sleep 0.2; printf 'cairn# '; exec sleep 300");
    assert_eq!(g.wait_for("two", Duration::from_secs(10)).unwrap(), "one two");
    assert_eq!(g.wait_for("t", Duration::from_secs(10)).unwrap(), "three", "consumed past `one two`");
    assert_eq!(g.wait_for("# ", Duration::from_secs(10)).unwrap(), "cairn# ");
    let pid = g.pid();
    let start = Instant::now();
    assert_eq!(g.wait_for("never", Duration::from_millis(200)), Err(WaitError::Timeout));
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(dead(pid), "a wait_for timeout kills");
    assert!(g.transcript().contains("cairn# "));
}

#[test]
fn wait_for_sees_the_end() {
    let mut g = spawn("echo only");
    assert_eq!(g.wait_for("missing", Duration::from_secs(10)), Err(WaitError::Ended));
}

#[test]
fn piped_stdin() {
    let opts = Options { stdin: Input::Piped, ..Options::default() };
    let mut g = Guest::spawn(sh("read a; echo \"got $a\"; read b; echo \"@@POWEROFF $b\""), opts).unwrap();
    g.send(b"hello\n").unwrap();
    assert_eq!(g.wait_for("got", Duration::from_secs(10)).unwrap(), "got hello");
    g.send(b"5\n").unwrap();
    let out = g.wait(LONG, GRACE);
    assert_eq!(out.poweroff, Some(5));
    assert!(Guest::spawn(sh("true"), Options::default()).unwrap().send(b"x").is_err(), "stdin not piped");
}

#[test]
fn null_stdin_reads_end_of_file() {
    let out = spawn("if read x; then echo got-input; else echo eof; fi; echo '@@POWEROFF 0'").wait(LONG, GRACE);
    assert!(out.transcript.starts_with("eof\n"), "{:?}", out.transcript);
}

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn echo_sink_gets_the_bytes_unchanged() {
    let sink = Sink::default();
    let opts = Options { echo: Some(Box::new(sink.clone())), ..Options::default() };
    let script = "printf 'a\\r\\nb'; sleep 0.1; printf 'c\\033[0m\\n\\377@@POWEROFF 0\\n'";
    let out = Guest::spawn(sh(script), opts).unwrap().wait(LONG, GRACE);
    assert_eq!(&sink.0.lock().unwrap()[..], b"a\r\nbc\x1b[0m\n\xff@@POWEROFF 0\n");
    assert_eq!(out.poweroff, None, "the line starts with a stray byte");
}

#[test]
fn spawn_failure_is_an_error() {
    assert!(Guest::spawn(Command::new("/nonexistent/qemu-system-x86_64"), Options::default()).is_err());
}
