//! Finding the files: the operands on the command line, then a depth-first
//! walk of each directory, in sorted order, listed on the worker pool.

use std::fs::FileType;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use conc_pipeline::Emitter;
use conc_pool::CpuPool;

use crate::hash::CancelOnDrop;
use crate::progress::Reporter;

/// Directory names a walk does not enter: build output and git's store.
const PRUNED: [&str; 2] = ["target", ".git"];

/// What kind of thing a [`Target`] is, which says how it is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A regular file: read on the worker pool.
    File,
    /// A pipe (a FIFO, or `/dev/stdin` or `<(cmd)` in a shell): read
    /// asynchronously, so a silent writer does not hold a thread.
    Pipe,
    /// Anything else named on the command line (a socket, a device): not
    /// hashed, reported as an error.
    Other,
}

impl Kind {
    fn of(file_type: FileType) -> Kind {
        if file_type.is_file() {
            Kind::File
        } else if is_fifo(file_type) {
            Kind::Pipe
        } else {
            Kind::Other
        }
    }
}

#[cfg(unix)]
fn is_fifo(file_type: FileType) -> bool {
    std::os::unix::fs::FileTypeExt::is_fifo(&file_type)
}

#[cfg(not(unix))]
fn is_fifo(_file_type: FileType) -> bool {
    false
}

/// One thing to hash: the item that travels through the pipeline.
#[derive(Debug)]
pub(crate) struct Target {
    /// The path as printed: the operand, or a directory operand joined
    /// with the path below it.
    pub(crate) path: PathBuf,
    pub(crate) kind: Kind,
}

/// A command-line operand, checked before the run starts.
#[derive(Debug)]
pub(crate) enum Root {
    Dir(PathBuf),
    /// Something to hash and its size (0 for a pipe).
    Target(Target, u64),
}

/// Checks every operand (following symbolic links, as `sha256sum` does for
/// the files it is given).
///
/// # Errors
///
/// A message naming the first operand that cannot be used (it does not
/// exist, or cannot be examined).
pub(crate) fn resolve(paths: &[PathBuf]) -> Result<Vec<Root>, String> {
    paths
        .iter()
        .map(|path| match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => Ok(Root::Dir(path.clone())),
            Ok(meta) => Ok(Root::Target(Target { path: path.clone(), kind: Kind::of(meta.file_type()) }, meta.len())),
            Err(error) => Err(format!("{}: {error}", path.display())),
        })
        .collect()
}

/// One entry of a directory listing.
#[derive(Debug)]
enum Node {
    Dir(PathBuf),
    File {
        path: PathBuf,
        len: u64,
    },
    /// A symbolic link or special file: not followed, not hashed.
    Skipped,
}

/// Lists `dir`, sorted by name, without following symbolic links. Blocking:
/// runs on the pool.
fn list_dir(dir: &Path) -> io::Result<Vec<Node>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        entries.push((entry.file_name(), entry));
    }
    entries.sort_by(|(a, _), (b, _)| a.cmp(b));
    let mut nodes = Vec::with_capacity(entries.len());
    for (name, entry) in entries {
        // `./name` prints as `name`, as a walk of the current directory should.
        let path = if dir == Path::new(".") { PathBuf::from(&name) } else { entry.path() };
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            if !PRUNED.iter().any(|pruned| name == *pruned) {
                nodes.push(Node::Dir(path));
            }
        } else if file_type.is_file() {
            // The size only feeds the progress bar: a file that vanished
            // since the listing is reported when it is read.
            let len = entry.metadata().map_or(0, |meta| meta.len());
            nodes.push(Node::File { path, len });
        } else {
            nodes.push(Node::Skipped);
        }
    }
    Ok(nodes)
}

/// Lists `dir` on the pool, so the runtime's threads never block on the
/// file system.
async fn list(pool: &CpuPool, dir: PathBuf) -> io::Result<Vec<Node>> {
    let job = pool.submit(move |_token| list_dir(&dir)).await.map_err(|_| io::Error::other("the pool is closed"))?;
    match CancelOnDrop(job).await {
        Ok(listing) => listing,
        Err(error) => Err(io::Error::other(format!("listing the directory: {error}"))),
    }
}

/// The pipeline's source: emits every operand that is not a directory, and
/// every regular file under those that are, depth first in sorted order (so
/// the output is sorted by path within each directory operand).
pub(crate) async fn walk(roots: Vec<Root>, out: Emitter<Target>, pool: CpuPool, reporter: Arc<Reporter>) {
    // One iterator per directory being walked, innermost last.
    let mut stack: Vec<std::vec::IntoIter<Node>> = Vec::new();
    for root in roots {
        let dir = match root {
            Root::Target(target, len) => {
                reporter.found_bytes(len);
                if out.send(target).await.is_err() {
                    return;
                }
                continue;
            }
            Root::Dir(dir) => dir,
        };
        stack.push(vec![Node::Dir(dir)].into_iter());
        while let Some(level) = stack.last_mut() {
            let Some(node) = level.next() else {
                stack.pop();
                continue;
            };
            match node {
                Node::Dir(dir) => {
                    let started = Instant::now();
                    let listing = list(&pool, dir.clone()).await;
                    reporter.add_walk_busy(started.elapsed());
                    match listing {
                        Ok(listing) => stack.push(listing.into_iter()),
                        Err(error) => reporter.walk_error(&dir, &error),
                    }
                }
                Node::File { path, len } => {
                    reporter.found_bytes(len);
                    if out.send(Target { path, kind: Kind::File }).await.is_err() {
                        return;
                    }
                }
                Node::Skipped => reporter.skipped(),
            }
        }
    }
}
