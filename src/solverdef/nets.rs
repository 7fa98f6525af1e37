//! The nets a solver names: resolving their paths, loading them with their phase and state.

use super::*;

/// Which base a relative net path was found from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathBase {
    Absolute,
    SolverDir,
    WorkingDir,
}

impl fmt::Display for PathBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathBase::Absolute => "absolute",
            PathBase::SolverDir => "relative to the solver file",
            PathBase::WorkingDir => "relative to the working directory",
        })
    }
}

/// A net path as written, the file it names and how it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedPath {
    pub given: String,
    pub path: PathBuf,
    pub base: PathBase,
    /// Every candidate, in the order tried.
    pub tried: Vec<PathBuf>,
    /// The span of the path's value in the solver.
    pub span: Span,
}

/// Where a net's definition comes from.
#[derive(Debug, Clone)]
pub enum NetOrigin {
    File(ResolvedPath),
    /// `net_param`, `train_net_param` or `test_net_param { ... }` in the solver.
    Inline {
        field: &'static str,
        block: Block,
    },
}

/// One net the solver runs: its definition and the state the solver gives it
/// (phase, then `train_state` / `test_state`; the net's own `state` is merged
/// in between when the net is loaded, as Caffe does).
#[derive(Debug, Clone)]
pub struct NetSpec {
    pub origin: NetOrigin,
    pub phase: Phase,
    /// The `train_state` / `test_state` block for this net, if any.
    pub state: Option<(NetState, Block)>,
    /// Forward passes per test (test nets only).
    pub test_iter: Option<i32>,
}

impl NetSpec {
    /// `mnist.prototxt (relative to the solver file)` or `net_param at solver:3:1`.
    pub fn describe(&self, source: &SourceFile) -> String {
        match &self.origin {
            NetOrigin::File(r) => format!("{} ({})", r.given, r.base),
            NetOrigin::Inline { field, block } => {
                format!("`{field}` at {}", source.location(block.span))
            }
        }
    }
}

/// A net loaded for the solver, with the state to build it in.
#[derive(Debug, Clone)]
pub struct LoadedNet {
    pub net: NetDef,
    pub state: NetState,
    /// The file its relative data paths are read against.
    pub file: PathBuf,
}

/// A checked solver file.
#[derive(Debug, Clone)]
pub struct SolverDef {
    pub params: SolverParams,
    pub policy: LrPolicy,
    /// The solver's top-level block, for spans and presence of fields.
    pub block: Block,
    pub source: Arc<SourceFile>,
    pub train_net: NetSpec,
    /// In Caffe's order: `test_net_param` blocks, `test_net` files, then
    /// instances of `net` / `net_param` for the remaining `test_iter` values.
    pub test_nets: Vec<NetSpec>,
}

impl SolverDef {
    /// Whether the field was written in the solver.
    pub fn has(&self, field: &str) -> bool {
        self.block.get(field).is_some()
    }

    /// `snapshot_prefix`, or Caffe's default when empty: the solver path without its extension.
    pub fn snapshot_prefix(&self) -> String {
        if self.params.snapshot_prefix.is_empty() {
            self.source
                .path
                .with_extension("")
                .to_string_lossy()
                .into_owned()
        } else {
            self.params.snapshot_prefix.clone()
        }
    }

    /// Reads a net of this solver and merges its state: phase, then the net's
    /// own `state`, then the solver's `train_state` / `test_state`.
    pub fn load_net(&self, spec: &NetSpec) -> Result<LoadedNet> {
        let (net, own_state, file) = match &spec.origin {
            NetOrigin::File(r) => {
                let doc = proto::parse(&SourceFile::read(&r.path)?)?;
                let net = netdef::parse_net(&doc)?;
                (net, doc.root.get("state").cloned(), r.path.clone())
            }
            NetOrigin::Inline { block, .. } => {
                let net = netdef::parse_net_block(block, &self.source)?;
                (net, block.get("state").cloned(), self.source.path.clone())
            }
        };
        let mut state = NetState {
            phase: spec.phase,
            ..NetState::default()
        };
        if let Some(Value::Block(b)) = own_state.as_ref().map(|f| &f.value) {
            merge_state(&mut state, &net.state, b);
        }
        if let Some((given, b)) = &spec.state {
            merge_state(&mut state, given, b);
        }
        Ok(LoadedNet { net, state, file })
    }
}

/// Protobuf `MergeFrom` of a `NetState`: fields written in `block` replace, stages append.
pub(super) fn merge_state(into: &mut NetState, given: &NetState, block: &Block) {
    if block.get("phase").is_some() {
        into.phase = given.phase;
    }
    if block.get("level").is_some() {
        into.level = given.level;
    }
    into.stage.extend(given.stage.iter().cloned());
}

impl Check<'_> {
    /// The train net and the test nets in Caffe's order, with paths resolved.
    pub(super) fn nets(
        &self,
        p: &SolverParams,
        solver_dir: &Path,
        cwd: &Path,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<(NetSpec, Vec<NetSpec>)> {
        let mut missing = Vec::new();
        let mut file = |field: &'static str, index: usize, given: &str| -> Option<NetOrigin> {
            let span = self.span(field, index);
            match resolve(given, span, solver_dir, cwd) {
                Ok(r) => Some(NetOrigin::File(r)),
                Err(tried) => {
                    missing.push(self.not_found(field, given, span, &tried, solver_dir));
                    None
                }
            }
        };
        let train_fields = ["net", "net_param", "train_net", "train_net_param"];
        let given: Vec<&str> = train_fields
            .iter()
            .copied()
            .filter(|f| self.has(f))
            .collect();
        let train = match given.as_slice() {
            [] => {
                diags.push(self.error(
                    self.top(),
                    "the solver names no train net",
                    "add `net: \"train_test.prototxt\"` \
                     (one of net, net_param, train_net, train_net_param)",
                ));
                None
            }
            [_, second, ..] => {
                let span = self.root.get(second).map_or(self.top(), |f| f.name_span);
                diags.push(self.error(
                    span,
                    format!("`{}` and `{second}` both name the train net", given[0]),
                    "keep exactly one of net, net_param, train_net, train_net_param",
                ));
                None
            }
            [field] => match *field {
                "net" => file("net", 0, p.net.as_deref().unwrap_or("")),
                "train_net" => file("train_net", 0, p.train_net.as_deref().unwrap_or("")),
                "net_param" => p.net_param.clone().map(|block| NetOrigin::Inline {
                    field: "net_param",
                    block,
                }),
                _ => p.train_net_param.clone().map(|block| NetOrigin::Inline {
                    field: "train_net_param",
                    block,
                }),
            },
        };
        let mut tests: Vec<NetOrigin> = p
            .test_net_param
            .iter()
            .map(|b| NetOrigin::Inline {
                field: "test_net_param",
                block: b.clone(),
            })
            .collect();
        for (i, t) in p.test_net.iter().enumerate() {
            if let Some(o) = file("test_net", i, t) {
                tests.push(o);
            }
        }
        let explicit = p.test_net.len() + p.test_net_param.len();
        let generic = self.has("net") || self.has("net_param");
        let n_iter = p.test_iter.len();
        let count_ok = if generic {
            n_iter >= explicit
        } else {
            n_iter == explicit
        };
        if !count_ok {
            let at = if n_iter > 0 {
                self.span("test_iter", 0)
            } else if !p.test_net.is_empty() {
                self.span("test_net", 0)
            } else {
                self.root
                    .get("test_net_param")
                    .map_or(self.top(), |f| f.name_span)
            };
            diags.push(self.error(
                at,
                format!(
                    "{explicit} test net{} (test_net / test_net_param) \
                     but {n_iter} `test_iter` value{}",
                    if explicit == 1 { "" } else { "s" },
                    if n_iter == 1 { "" } else { "s" }
                ),
                "give one `test_iter` per test net, in Caffe's order: \
                 test_net_param blocks first, then test_net files",
            ));
        }
        // With `net` / `net_param`, each test_iter beyond the explicit test nets
        // tests the TEST phase of that same net.
        let instances = if generic {
            n_iter.max(explicit)
        } else {
            explicit
        };
        if generic && count_ok {
            for _ in explicit..n_iter {
                if let Some(o) = train.clone() {
                    tests.push(o);
                }
            }
        }
        if !p.test_state.is_empty() && p.test_state.len() != instances {
            diags.push(
                self.error(
                    self.root
                        .get("test_state")
                        .map_or(self.top(), |f| f.name_span),
                    format!(
                        "{} `test_state` blocks for {instances} test net(s)",
                        p.test_state.len()
                    ),
                    "give no test_state, or one per test net in order",
                ),
            );
        }
        if instances > 0 && p.test_interval <= 0 {
            diags.push(self.error(
                self.span("test_iter", 0),
                format!("{instances} test net(s) but no `test_interval`"),
                "Caffe requires test_interval > 0 when a test net exists: \
                 add `test_interval: N` (iterations between tests)",
            ));
        }
        if instances == 0 && p.test_interval > 0 {
            let help = if generic {
                "add `test_iter: N` (forward passes per test) to test the TEST phase \
                 of the net, or remove test_interval"
            } else {
                "add `test_net` and `test_iter: N`, or remove test_interval"
            };
            diags.push(self.error(
                self.span("test_interval", 0),
                format!(
                    "test_interval is {} but no test net runs (no `test_iter`)",
                    p.test_interval
                ),
                help,
            ));
        }
        let ok = missing.is_empty();
        diags.append(&mut missing);
        let train = train?;
        if !ok || !diags.is_empty() || tests.len() != instances {
            return None;
        }
        let state = |name: &str, i: usize, s: &NetState| {
            let block = match self.root.all(name).nth(i).map(|f| &f.value) {
                Some(Value::Block(b)) => b.clone(),
                _ => Block::default(),
            };
            (s.clone(), block)
        };
        let train_net = NetSpec {
            origin: train,
            phase: Phase::Train,
            state: p.train_state.as_ref().map(|s| state("train_state", 0, s)),
            test_iter: None,
        };
        let test_nets = tests
            .into_iter()
            .enumerate()
            .map(|(i, origin)| NetSpec {
                origin,
                phase: Phase::Test,
                state: p.test_state.get(i).map(|s| state("test_state", i, s)),
                test_iter: p.test_iter.get(i).copied(),
            })
            .collect();
        Some((train_net, test_nets))
    }

    pub(super) fn not_found(
        &self,
        field: &str,
        given: &str,
        span: Span,
        tried: &[PathBuf],
        solver_dir: &Path,
    ) -> Diagnostic {
        let list: Vec<String> = tried.iter().map(|t| t.display().to_string()).collect();
        let mut hints = Vec::new();
        let rel = Path::new(given);
        if let Some(base) = rel.file_name() {
            if rel.components().count() > 1 && solver_dir.join(base).is_file() {
                hints.push(format!(
                    "`{}` is beside the solver: write `{field}: \"{}\"`",
                    base.to_string_lossy(),
                    base.to_string_lossy()
                ));
            }
        }
        if rel.is_relative() {
            if let Some(a) = solver_dir
                .ancestors()
                .skip(1)
                .find(|a| a.join(rel).is_file())
            {
                hints.push(format!(
                    "it exists relative to `{}`: Caffe reads net paths \
                     from the working directory, so run from there",
                    a.display()
                ));
            }
        }
        let help = if hints.is_empty() {
            "relative paths are read from the solver's folder, then from the working directory"
                .to_string()
        } else {
            hints.join("; or ")
        };
        self.error(
            span,
            format!(
                "{field} file `{given}` not found; tried: {}",
                list.join(", ")
            ),
            help,
        )
    }
}

/// Candidates for a net path: itself when absolute, else the solver's folder
/// then the working directory.
pub(super) fn resolve(
    given: &str,
    span: Span,
    solver_dir: &Path,
    cwd: &Path,
) -> std::result::Result<ResolvedPath, Vec<PathBuf>> {
    let p = Path::new(given);
    let candidates: Vec<(PathBuf, PathBase)> = if p.is_absolute() {
        vec![(normalize(p), PathBase::Absolute)]
    } else {
        let mut c = vec![(normalize(&solver_dir.join(p)), PathBase::SolverDir)];
        let from_cwd = normalize(&cwd.join(p));
        if from_cwd != c[0].0 {
            c.push((from_cwd, PathBase::WorkingDir));
        }
        c
    };
    let tried: Vec<PathBuf> = candidates.iter().map(|(c, _)| c.clone()).collect();
    match candidates
        .into_iter()
        .find(|(c, _)| !given.is_empty() && c.is_file())
    {
        Some((path, base)) => Ok(ResolvedPath {
            given: given.to_string(),
            path,
            base,
            tried,
            span,
        }),
        None => Err(tried),
    }
}

/// Removes `.` and folds `..` lexically, for readable paths in messages.
pub(super) fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}
