//! Walks a ModelProto and every graph, node, attribute and tensor in it,
//! subgraphs (If, Loop and Scan bodies) included, and applies the safety
//! rules: no external data, no model-local functions or training info, only
//! the standard ONNX domain, one standard opset import in the policy's range,
//! no runtime settings in metadata, and bounded subgraph nesting.

use crate::refusal::{Refusal, Shown};
use crate::schema::{self, read, Field};
use crate::Policy;

/// What the walk learned about a model that passed it.
pub(crate) struct Walked<'a> {
    pub ir_version: i64,
    pub opset: i64,
    pub nodes: usize,
    pub main: MainGraph<'a>,
}

/// What the family check needs from the main graph.
#[derive(Default)]
pub(crate) struct MainGraph<'a> {
    /// ValueInfoProto bytes of the graph inputs.
    pub inputs: Vec<&'a [u8]>,
    /// ValueInfoProto bytes of the graph outputs.
    pub outputs: Vec<&'a [u8]>,
    /// Names of the initializers, dense and sparse.
    pub initializers: Vec<&'a [u8]>,
}

/// Where a graph sits: the model's own graph, or a subgraph held by a node's
/// attribute.
enum Scope {
    Main,
    Sub {
        depth: usize,
        attribute: Shown,
        node: String,
    },
}

impl Scope {
    fn depth(&self) -> usize {
        match self {
            Scope::Main => 0,
            Scope::Sub { depth, .. } => *depth,
        }
    }

    /// Appended to a description of something in this graph.
    fn suffix(&self) -> String {
        match self {
            Scope::Main => String::new(),
            Scope::Sub {
                depth,
                attribute,
                node,
            } => format!(" in a subgraph (depth {depth}, attribute {attribute} of {node})"),
        }
    }
}

/// A tensor's name and, if its data lives outside the model, the location
/// it names (if any).
struct TensorFacts<'a> {
    name: &'a [u8],
    external: Option<Option<Shown>>,
}

struct Walker<'p> {
    policy: &'p Policy,
    nodes: usize,
}

/// Walks the whole model.
pub(crate) fn model<'a>(bytes: &'a [u8], policy: &Policy) -> Result<Walked<'a>, Refusal> {
    let mut walker = Walker { policy, nodes: 0 };
    let (mut ir_version, mut main, mut functions) = (None, None, 0);
    let mut standard_imports = Vec::new();
    for f in read(bytes, &schema::MODEL)? {
        match f.number {
            1 => ir_version = Some(f.int()),
            7 => main = Some(walker.graph(f.bytes(), &Scope::Main)?),
            8 => standard_imports.push(opset_import(f.bytes())?),
            14 => metadata(f.bytes())?,
            20 => return Err(Refusal::TrainingInfo),
            25 => functions += 1,
            _ => {}
        }
    }
    if functions > 0 {
        return Err(Refusal::ModelFunctions { count: functions });
    }
    let ir_version = match ir_version {
        Some(v) if v >= 3 => v,
        other => return Err(Refusal::IrVersion(other)),
    };
    let opset = match standard_imports[..] {
        [v] if policy.opsets.contains(&v) => v,
        [v] => {
            return Err(Refusal::Opset(format!(
                "the model imports ONNX operator set version {v}; versions {} to {} are accepted",
                policy.opsets.start(),
                policy.opsets.end()
            )))
        }
        [] => {
            return Err(Refusal::Opset(
                "the model imports no standard ONNX operator set; it must import exactly one"
                    .into(),
            ))
        }
        _ => {
            return Err(Refusal::Opset(format!(
                "the model imports the standard ONNX operator set {} times; it must import it exactly once",
                standard_imports.len()
            )))
        }
    };
    let main = main.ok_or_else(|| Refusal::Malformed {
        message: "ModelProto",
        detail: "there is no graph".into(),
    })?;
    Ok(Walked {
        ir_version,
        opset,
        nodes: walker.nodes,
        main,
    })
}

fn is_standard_domain(domain: &[u8]) -> bool {
    domain.is_empty() || domain == b"ai.onnx"
}

/// The version of a standard opset import; any other domain is refused.
fn opset_import(bytes: &[u8]) -> Result<i64, Refusal> {
    let (mut domain, mut version) = (&[][..], 0);
    for f in read(bytes, &schema::OPSET_ID)? {
        match f.number {
            1 => domain = f.bytes(),
            _ => version = f.int(),
        }
    }
    if !is_standard_domain(domain) {
        return Err(Refusal::CustomDomain {
            what: "the model imports operators from domain".into(),
            domain: Shown::new(domain),
        });
    }
    Ok(version)
}

/// The key and value of a StringStringEntryProto.
fn entry(bytes: &[u8]) -> Result<(&[u8], &[u8]), Refusal> {
    let (mut key, mut value) = (&[][..], &[][..]);
    for f in read(bytes, &schema::STRING_ENTRY)? {
        match f.number {
            1 => key = f.bytes(),
            _ => value = f.bytes(),
        }
    }
    Ok((key, value))
}

/// Refuses metadata keys ONNX Runtime reads its own settings from.
fn metadata(bytes: &[u8]) -> Result<(), Refusal> {
    let (key, _) = entry(bytes)?;
    let lower = key.to_ascii_lowercase();
    if lower.starts_with(b"ort_") || lower.starts_with(b"onnxruntime") {
        return Err(Refusal::RuntimeMetadata {
            key: Shown::new(key),
        });
    }
    Ok(())
}

fn tensor(bytes: &[u8]) -> Result<TensorFacts<'_>, Refusal> {
    let mut facts = TensorFacts {
        name: &[],
        external: None,
    };
    for f in read(bytes, &schema::TENSOR)? {
        match f.number {
            3 => {
                read(f.bytes(), &schema::SEGMENT)?;
            }
            8 => facts.name = f.bytes(),
            13 => {
                let (key, value) = entry(f.bytes())?;
                let location = facts.external.get_or_insert(None);
                if key == b"location" && location.is_none() {
                    *location = Some(Shown::new(value));
                }
            }
            14 if f.int() != 0 => {
                facts.external.get_or_insert(None);
            }
            16 => {
                entry(f.bytes())?;
            }
            _ => {}
        }
    }
    Ok(facts)
}

/// A sparse tensor's facts: the name of its values, external if either of
/// its tensors is.
fn sparse(bytes: &[u8]) -> Result<TensorFacts<'_>, Refusal> {
    let mut facts = TensorFacts {
        name: &[],
        external: None,
    };
    for f in read(bytes, &schema::SPARSE_TENSOR)? {
        if f.number == 1 || f.number == 2 {
            let part = tensor(f.bytes())?;
            if f.number == 1 {
                facts.name = part.name;
            }
            if facts.external.is_none() {
                facts.external = part.external;
            }
        }
    }
    Ok(facts)
}

/// Refuses a tensor whose data lives outside the model.
fn self_contained(facts: &TensorFacts<'_>, what: impl FnOnce() -> String) -> Result<(), Refusal> {
    match &facts.external {
        None => Ok(()),
        Some(location) => Err(Refusal::ExternalData {
            tensor: what(),
            location: location.clone(),
        }),
    }
}

fn find<'a>(fields: &[Field<'a>], number: u32) -> &'a [u8] {
    fields
        .iter()
        .find(|f| f.number == number)
        .map_or(&[][..], |f| f.bytes())
}

impl Walker<'_> {
    fn graph<'a>(&mut self, bytes: &'a [u8], scope: &Scope) -> Result<MainGraph<'a>, Refusal> {
        let mut main = MainGraph::default();
        let mut node_index = 0;
        for f in read(bytes, &schema::GRAPH)? {
            match f.number {
                1 => {
                    self.node(f.bytes(), node_index, scope)?;
                    node_index += 1;
                }
                5 => {
                    let t = tensor(f.bytes())?;
                    self_contained(&t, || {
                        format!("initializer {}{}", Shown::new(t.name), scope.suffix())
                    })?;
                    main.initializers.push(t.name);
                }
                15 => {
                    let t = sparse(f.bytes())?;
                    self_contained(&t, || {
                        format!(
                            "sparse initializer {}{}",
                            Shown::new(t.name),
                            scope.suffix()
                        )
                    })?;
                    main.initializers.push(t.name);
                }
                11 => main.inputs.push(f.bytes()),
                12 => main.outputs.push(f.bytes()),
                16 => metadata(f.bytes())?,
                _ => {}
            }
        }
        Ok(main)
    }

    fn node(&mut self, bytes: &[u8], index: usize, scope: &Scope) -> Result<(), Refusal> {
        self.nodes += 1;
        let fields = read(bytes, &schema::NODE)?;
        let (name, op) = (find(&fields, 3), find(&fields, 4));
        let label = || {
            let who = if name.is_empty() {
                format!("node #{index}")
            } else {
                format!("node {}", Shown::new(name))
            };
            format!("{who} (op {})", Shown::new(op))
        };
        for f in &fields {
            match f.number {
                7 if !is_standard_domain(f.bytes()) => {
                    return Err(Refusal::CustomDomain {
                        what: format!("{}{} is in domain", label(), scope.suffix()),
                        domain: Shown::new(f.bytes()),
                    })
                }
                5 => self.attribute(f.bytes(), &label, scope)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn attribute(
        &mut self,
        bytes: &[u8],
        node: &dyn Fn() -> String,
        scope: &Scope,
    ) -> Result<(), Refusal> {
        let fields = read(bytes, &schema::ATTRIBUTE)?;
        let name = find(&fields, 1);
        let what = || {
            format!(
                "attribute {} of {}{}",
                Shown::new(name),
                node(),
                scope.suffix()
            )
        };
        for f in &fields {
            match f.number {
                5 | 10 => {
                    self_contained(&tensor(f.bytes())?, || format!("the tensor in {}", what()))?
                }
                22 | 23 => self_contained(&sparse(f.bytes())?, || {
                    format!("the sparse tensor in {}", what())
                })?,
                6 | 11 => {
                    let depth = scope.depth() + 1;
                    if depth > self.policy.max_depth {
                        return Err(Refusal::TooDeep {
                            what: format!("{}{}", node(), scope.suffix()),
                            depth,
                            max: self.policy.max_depth,
                        });
                    }
                    let sub = Scope::Sub {
                        depth,
                        attribute: Shown::new(name),
                        node: node(),
                    };
                    self.graph(f.bytes(), &sub)?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}
