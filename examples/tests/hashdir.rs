//! The `hashdir` example as a real process: its output is checked against
//! SHA-256 sums computed here with `sha2`, its exit statuses against the
//! documented ones, and its Ctrl-C handling with real signals.
//!
//! The signal tests are deterministic without sleeping: a FIFO named on the
//! command line is held open (for writing) by the test and never written,
//! so once the run has it open (seen in `/proc`, hence Linux only) and its
//! other lines are out, it is certainly blocked mid-flight when the signal
//! is sent. The timeouts below only stop a broken build from hanging the
//! suite.
#![cfg(all(unix, not(miri)))]

mod support;

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use support::Process;

/// How long to wait for the program before calling it stuck.
const PATIENCE: Duration = Duration::from_secs(60);

/// A directory under the system temp dir, unique to this test, removed at
/// the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let unique = format!("hashdir-{}-{}-{name}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(unique);
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create the temp dir");
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `content` at `relative`, creating the directories above it.
    fn write(&self, relative: &str, content: &[u8]) {
        let path = self.0.join(relative);
        fs::create_dir_all(path.parent().expect("a parent")).expect("create dirs");
        fs::write(path, content).expect("write a file");
    }

    fn mkfifo(&self, relative: &str) -> PathBuf {
        let path = self.0.join(relative);
        let status = Command::new("mkfifo").arg(&path).status().expect("run mkfifo");
        assert!(status.success(), "mkfifo failed");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn sha256_hex(content: &[u8]) -> String {
    Sha256::digest(content).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The `sha256sum` lines for `files` (path as printed, content), in the
/// order hashdir prints them: sorted by path, component by component.
fn expected(files: &[(String, Vec<u8>)]) -> String {
    let mut files: Vec<(PathBuf, &[u8])> =
        files.iter().map(|(path, content)| (PathBuf::from(path), content.as_slice())).collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files.iter().map(|(path, content)| format!("{}  {}\n", sha256_hex(content), path.display())).collect()
}

/// A running hashdir whose output is read by two threads: stdout line by
/// line (to wait for a line), stderr whole. Killed if a test fails half way.
struct Hashdir {
    process: Process,
    stderr: Option<JoinHandle<String>>,
}

impl Hashdir {
    fn start(args: &[&Path], configure: impl FnOnce(&mut Command)) -> Hashdir {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hashdir"));
        command.args(args).stdin(Stdio::null()).stderr(Stdio::piped());
        configure(&mut command);
        let mut process = Process::spawn("hashdir", &mut command, PATIENCE);
        let mut stderr = process.child_mut().stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            // A read error ends the text; what was read is kept.
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Hashdir { process, stderr: Some(stderr) }
    }

    /// Waits until `count` lines have come out on stdout.
    fn wait_for_lines(&mut self, count: usize) {
        self.process.wait_for_lines(count);
    }

    /// Waits until the process has `path` open (read from `/proc`, so Linux
    /// only): a bounded poll for a condition, not a sleep for a time rule.
    #[cfg(target_os = "linux")]
    fn wait_until_open(&mut self, path: &Path) {
        let fds = PathBuf::from(format!("/proc/{}/fd", self.process.child_mut().id()));
        let give_up = Instant::now() + PATIENCE;
        loop {
            let entries = fs::read_dir(&fds).expect("list the process's fds");
            if entries.flatten().any(|fd| fs::read_link(fd.path()).is_ok_and(|target| target == path)) {
                return;
            }
            assert!(Instant::now() < give_up, "hashdir never opened {}", path.display());
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn signal(&self, signal: &str) {
        self.process.signal(signal);
    }

    /// Waits for the exit, and returns the status, stdout and stderr.
    fn finish(mut self) -> (ExitStatus, String, String) {
        let status = self.process.finish();
        let stderr = self.stderr.take().expect("stderr reader").join().expect("stderr reader panicked");
        let stdout = self.process.seen.iter().map(|line| format!("{line}\n")).collect();
        (status, stdout, stderr)
    }
}

/// Runs hashdir to its end.
fn hashdir(args: &[&Path]) -> (ExitStatus, String, String) {
    Hashdir::start(args, |_| {}).finish()
}

/// A tree with nested directories, an empty file, a file larger than one
/// read chunk, and what a walk must skip: `target/` and `.git/` at any
/// depth, a symbolic link and a FIFO (which would block a reader forever).
/// Returns the files hashdir must hash, by path relative to the tree.
fn sample_tree(dir: &TempDir) -> Vec<(String, Vec<u8>)> {
    let big: Vec<u8> = (0..700_000_u32).map(|n| (n % 251) as u8).collect();
    let files = vec![
        ("a.txt".to_owned(), b"hello\n".to_vec()),
        ("a.txt.d/z".to_owned(), b"sorted after a.txt, by component".to_vec()),
        ("empty".to_owned(), Vec::new()),
        ("name with spaces.md".to_owned(), b"spaces".to_vec()),
        ("nested/deeper/big.bin".to_owned(), big),
        ("nested/x.rs".to_owned(), b"fn main() {}\n".to_vec()),
        ("nested/targets/kept".to_owned(), b"only `target` is pruned".to_vec()),
    ];
    for (path, content) in &files {
        dir.write(path, content);
    }
    dir.write("target/debug/skipped", b"build output");
    dir.write(".git/HEAD", b"ref: refs/heads/main\n");
    dir.write("nested/target/skipped", b"a nested crate's build output");
    std::os::unix::fs::symlink("a.txt", dir.path().join("link")).expect("symlink");
    dir.mkfifo("nested/fifo");
    files
}

#[test]
fn hashes_every_file_as_sha256sum_would_in_a_stable_order() {
    let dir = TempDir::new("tree");
    let files = sample_tree(&dir);
    let root = dir.path().display().to_string();
    let want =
        expected(&files.iter().map(|(path, content)| (format!("{root}/{path}"), content.clone())).collect::<Vec<_>>());
    assert!(files[4].1.len() > 2 * 256 * 1024, "the big file spans several read chunks");

    for jobs in ["1", "3", "16"] {
        let (status, stdout, stderr) = hashdir(&[dir.path(), Path::new("--jobs"), Path::new(jobs)]);
        assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
        assert_eq!(stdout, want, "--jobs {jobs}");
        assert!(stderr.starts_with("hashdir: done in "), "stderr:\n{stderr}");
        assert!(
            stderr.contains(
                "files   7 hashed, 0 failed, 0 dropped in flight, of 7 found (2 links and special files skipped)"
            ),
            "stderr:\n{stderr}"
        );
        assert!(stderr.contains("stage   hash  7 in, 7 out, 0 errors"), "stderr:\n{stderr}");
        assert!(stderr.contains("bottleneck: "), "stderr:\n{stderr}");
    }
}

#[test]
fn walks_the_current_directory_by_default_and_prints_bare_paths() {
    let dir = TempDir::new("cwd");
    let files = sample_tree(&dir);
    let (status, stdout, stderr) = Hashdir::start(&[], |command| {
        command.current_dir(dir.path());
    })
    .finish();
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert_eq!(stdout, expected(&files));
}

#[test]
fn files_and_pipes_named_on_the_command_line_are_hashed_in_order() {
    let dir = TempDir::new("operands");
    dir.write("one", b"first operand");
    dir.write("sub/two", b"inside a directory operand");
    let piped = b"bytes through a pipe, as in `hashdir <(cmd)`".repeat(5000);

    let one = dir.path().join("one");
    let sub = dir.path().join("sub");
    let mut run = Hashdir::start(&[&sub, Path::new("/dev/stdin"), &one], |command| {
        command.stdin(Stdio::piped());
    });
    let mut stdin = run.process.child_mut().stdin.take().expect("piped stdin");
    stdin.write_all(&piped).expect("write the pipe");
    drop(stdin);
    let (status, stdout, stderr) = run.finish();

    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    let want = format!(
        "{}  {}/two\n{}  /dev/stdin\n{}  {}\n",
        sha256_hex(b"inside a directory operand"),
        sub.display(),
        sha256_hex(&piped),
        sha256_hex(b"first operand"),
        one.display()
    );
    assert_eq!(stdout, want, "operands keep their command-line order");
}

#[test]
fn a_file_that_cannot_be_read_is_reported_counted_and_skipped() {
    let dir = TempDir::new("errors");
    dir.write("tree/good", b"good");
    dir.write("tree/zzz", b"after the bad one");
    let mut failures = 1;
    // Unreadable by permission, where that holds (not for root).
    let locked = dir.path().join("tree/locked");
    dir.write("tree/locked", b"secret");
    fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).expect("chmod");
    let locked_fails = fs::File::open(&locked).is_err();
    if locked_fails {
        failures += 1;
    }
    // A socket named on the command line cannot be read by anyone.
    let socket = dir.path().join("socket");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind a socket");

    let tree = dir.path().join("tree");
    let (status, stdout, stderr) = hashdir(&[&tree, &socket]);

    assert_eq!(status.code(), Some(1), "stderr:\n{stderr}");
    let mut want = vec![(format!("{}/good", tree.display()), b"good".to_vec())];
    want.push((format!("{}/zzz", tree.display()), b"after the bad one".to_vec()));
    if !locked_fails {
        want.push((locked.display().to_string(), b"secret".to_vec()));
    }
    assert_eq!(stdout, expected(&want), "the run went on past the failures");
    assert!(stderr.contains(&format!("hashdir: {}: not a regular file or a pipe\n", socket.display())), "{stderr}");
    if locked_fails {
        assert!(stderr.contains(&format!("hashdir: {}: Permission denied", locked.display())), "{stderr}");
    }
    assert!(stderr.contains(&format!(" hashed, {failures} failed, 0 dropped in flight")), "{stderr}");
}

#[test]
fn a_path_that_does_not_exist_exits_2() {
    let dir = TempDir::new("missing");
    let missing = dir.path().join("no-such-dir");
    let (status, stdout, stderr) = hashdir(&[dir.path(), &missing]);
    assert_eq!(status.code(), Some(2), "stderr:\n{stderr}");
    assert_eq!(stdout, "", "nothing is hashed when an operand is missing");
    assert_eq!(stderr, format!("hashdir: {}: No such file or directory (os error 2)\n", missing.display()));
}

#[test]
fn bad_usage_exits_2_with_the_usage_and_help_exits_0() {
    let dir = TempDir::new("usage");
    for (args, message) in [
        (vec!["--bogus"], "unknown option --bogus"),
        (vec!["--jobs", "0"], "--jobs wants a whole number of at least 1"),
        (vec!["-j", "many"], "--jobs wants a whole number of at least 1"),
        (vec!["--jobs=-1"], "--jobs wants a whole number of at least 1"),
        (vec!["--jobs"], "--jobs needs a value"),
    ] {
        let args: Vec<&Path> = [dir.path()].into_iter().chain(args.iter().map(Path::new)).collect();
        let (status, stdout, stderr) = hashdir(&args);
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stdout, "");
        assert!(stderr.starts_with(&format!("hashdir: {message}")), "{args:?}: {stderr}");
        assert!(stderr.contains("usage: hashdir [-j N | --jobs N] [PATH]..."), "{args:?}: {stderr}");
    }
    let (status, stdout, stderr) = hashdir(&[Path::new("--help")]);
    assert_eq!(status.code(), Some(0));
    assert!(stdout.contains("usage: hashdir"), "{stdout}");
    assert_eq!(stderr, "");
}

/// Starts a run over a small tree and a FIFO that the test holds open and
/// never writes, waits until the tree's lines are out and the run has the
/// FIFO open (it is then blocked on it), sends `signal`, and returns what
/// the run did. The FIFO stays open until the run has exited: it stopped
/// without waiting for the read.
#[cfg(target_os = "linux")]
fn interrupt_a_run_blocked_mid_flight(signal: &str) -> (ExitStatus, String, String, String) {
    let dir = TempDir::new("signal");
    let files: Vec<(String, Vec<u8>)> =
        (0..3).map(|n| (format!("tree/file-{n}"), format!("content {n}").into_bytes())).collect();
    for (path, content) in &files {
        dir.write(path, content);
    }
    let fifo = dir.mkfifo("fifo");
    // Read and write: opening does not wait for a partner, and the run's
    // reader sees a writer that never writes.
    let writer = fs::OpenOptions::new().read(true).write(true).open(&fifo).expect("open the fifo");

    let tree = dir.path().join("tree");
    let mut run = Hashdir::start(&[&tree, &fifo], |_| {});
    // The tree's lines are out, and the FIFO (the last item) is being read.
    run.wait_for_lines(files.len());
    run.wait_until_open(&fifo);
    run.signal(signal);
    let (status, stdout, stderr) = run.finish();
    drop(writer);

    let root = dir.path().display().to_string();
    let want =
        expected(&files.iter().map(|(path, content)| (format!("{root}/{path}"), content.clone())).collect::<Vec<_>>());
    (status, stdout, stderr, want)
}

#[cfg(target_os = "linux")]
#[test]
fn sigint_stops_a_blocked_run_with_a_summary_and_exit_130() {
    let (status, stdout, stderr, want) = interrupt_a_run_blocked_mid_flight("INT");
    assert_eq!(status.code(), Some(130), "stderr:\n{stderr}");
    assert_eq!(stdout, want, "what was hashed before the signal is printed, whole");
    assert!(stderr.starts_with("hashdir: stopped by SIGINT after "), "stderr:\n{stderr}");
    assert!(stderr.contains("files   3 hashed, 0 failed, 1 dropped in flight, of 4 found"), "stderr:\n{stderr}");
    assert!(stderr.contains("stage   hash  4 in, 3 out, 0 errors"), "stderr:\n{stderr}");
}

#[cfg(target_os = "linux")]
#[test]
fn sigterm_stops_a_blocked_run_with_exit_143() {
    let (status, stdout, stderr, want) = interrupt_a_run_blocked_mid_flight("TERM");
    assert_eq!(status.code(), Some(143), "stderr:\n{stderr}");
    assert_eq!(stdout, want);
    assert!(stderr.starts_with("hashdir: stopped by SIGTERM after "), "stderr:\n{stderr}");
    assert!(stderr.contains("1 dropped in flight"), "stderr:\n{stderr}");
}
