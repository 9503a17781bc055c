//! Authorization: `accessControl` policies and the nucleus' decision rules (spec §5).
//!
//! Pure logic: parsing a component's `accessControl` document into [`Policies`], matching
//! resources, and [`authorize`], which applies the hard-coded caller rules, the list of
//! operations that are never checked, and the policies of the caller.

use std::collections::BTreeMap;

use serde_json::Value;

use super::facts::{facts, grantable_operations};
use super::operations::OPERATION_FACTS;

/// The component allowed to call `ValidateAuthorizationToken` (and exempt from the
/// per-metric checks of `PutComponentMetric`).
pub(crate) const STREAM_MANAGER: &str = "aws.greengrass.StreamManager";
/// The CLI component, which bypasses `aws.greengrass.Cli` checks.
pub(crate) const CLI: &str = "aws.greengrass.Cli";
/// Prefix of Greengrass CLI client identities, which bypass `aws.greengrass.Cli` checks.
pub(crate) const CLI_CLIENT_PREFIX: &str = "greengrass-cli#";
/// The shadow manager, which bypasses `aws.greengrass.ShadowManager` checks.
pub(crate) const SHADOW_MANAGER: &str = "aws.greengrass.ShadowManager";

/// How a service compares policy resources with request resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matching {
    /// `*` matches any run of characters; `+` and `#` are literal.
    Standard,
    /// As standard, plus MQTT `+` (one whole level) and a final `#` level (any levels).
    Mqtt,
}

impl Matching {
    /// The matching mode of a service identifier.
    pub fn of_service(service: &str) -> Matching {
        if OPERATION_FACTS
            .iter()
            .any(|f| f.service == Some(service) && f.mqtt_matching)
        {
            Matching::Mqtt
        } else {
            Matching::Standard
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Char(char),
    Star,
    /// MQTT `+` occupying a whole level.
    Level,
}

/// One policy resource, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    text: String,
    tokens: Vec<Token>,
    /// MQTT: the resource ended with a `/#` level, stripped from `tokens`.
    multi_level_tail: bool,
    /// MQTT: the resource was a lone `#` (everything).
    match_all: bool,
}

impl Resource {
    /// Parses a policy resource for the given matching mode.
    ///
    /// # Errors
    /// A description of the problem: an unescaped `?` or a `${…}` other than `${*}`,
    /// `${?}`, `${$}`.
    pub fn parse(text: &str, matching: Matching) -> Result<Resource, String> {
        // AuthorizationModule.validateResource (aws-greengrass-nucleus): "Resource cannot be
        // empty".
        if text.is_empty() {
            return Err("an empty resource is invalid".to_owned());
        }
        let mut body = text;
        let mut multi_level_tail = false;
        let mut match_all = false;
        if matching == Matching::Mqtt {
            if body == "#" {
                body = "";
                match_all = true;
            } else if let Some(stripped) = body.strip_suffix("/#") {
                body = stripped;
                multi_level_tail = true;
            }
        }
        let mut tokens = Vec::new();
        let levels: Vec<&str> = body.split('/').collect();
        for (i, level) in levels.iter().enumerate() {
            if i > 0 {
                tokens.push(Token::Char('/'));
            }
            if matching == Matching::Mqtt && *level == "+" {
                tokens.push(Token::Level);
                continue;
            }
            let mut chars = level.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '*' => tokens.push(Token::Star),
                    '?' => {
                        return Err(format!(
                            "resource {text:?} holds an unescaped '?' (write ${{?}})"
                        ))
                    }
                    '$' if chars.peek() == Some(&'{') => {
                        // Exactly `${c}` with c one of `*`, `?`, `$` (WildcardTrie.getActualChar
                        // and AuthorizationModule.validateResource in aws-greengrass-nucleus);
                        // anything else, an unterminated `${*` included, is invalid.
                        chars.next();
                        let inner = chars.next();
                        let close = chars.next();
                        match (inner, close) {
                            (Some(c @ ('*' | '?' | '$')), Some('}')) => tokens.push(Token::Char(c)),
                            _ => {
                                return Err(format!(
                                    "resource {text:?} holds an invalid escape sequence \
                                     (only ${{*}}, ${{?}} and ${{$}} are allowed)"
                                ))
                            }
                        }
                    }
                    c => tokens.push(Token::Char(c)),
                }
            }
        }
        Ok(Resource {
            text: text.to_owned(),
            tokens,
            multi_level_tail,
            match_all,
        })
    }

    /// The resource as written in the policy.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the request resource `resource` is covered by this policy resource.
    pub fn matches(&self, resource: &str) -> bool {
        if self.match_all {
            return true;
        }
        let chars: Vec<char> = resource.chars().collect();
        if !self.multi_level_tail {
            return glob(&self.tokens, &chars);
        }
        // `a/#`: `a` itself, or `a/` followed by anything.
        if glob(&self.tokens, &chars) {
            return true;
        }
        let mut with_tail = self.tokens.clone();
        with_tail.push(Token::Char('/'));
        with_tail.push(Token::Star);
        glob(&with_tail, &chars)
    }
}

/// Glob matching with backtracking over `*` and whole-level `+`; linear memory.
fn glob(pattern: &[Token], text: &[char]) -> bool {
    // Dynamic programming over (pattern index, text index), small inputs.
    let (p, t) = (pattern.len(), text.len());
    let mut row = vec![false; t + 1];
    row[0] = true;
    for token in pattern {
        let mut next = vec![false; t + 1];
        match token {
            Token::Char(c) => {
                for j in 0..t {
                    if row[j] && text[j] == *c {
                        next[j + 1] = true;
                    }
                }
            }
            Token::Star => {
                let mut reach = false;
                for j in 0..=t {
                    reach |= row[j];
                    next[j] = reach;
                }
            }
            Token::Level => {
                // Any run of characters without '/', within the current level.
                for j in 0..=t {
                    if !row[j] {
                        continue;
                    }
                    next[j] = true;
                    // A bounded `for` (not a `while` on a counter): no edit of it loops
                    // forever.
                    for k in j..t {
                        if text[k] == '/' {
                            break;
                        }
                        next[k + 1] = true;
                    }
                }
            }
        }
        row = next;
    }
    let _ = p;
    row[t]
}

/// One policy of a component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The policy id (its key in `accessControl.<service>`).
    pub id: String,
    /// `policyDescription`, if any.
    pub description: Option<String>,
    /// Operations: `aws.greengrass#<Op>` or `*`.
    pub operations: Vec<String>,
    /// Resources.
    pub resources: Vec<Resource>,
}

impl Policy {
    fn allows_operation(&self, operation: &str) -> bool {
        self.operations
            .iter()
            .any(|o| o == "*" || o.strip_prefix("aws.greengrass#") == Some(operation))
    }
}

/// A problem found while reading an `accessControl` document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyProblem {
    /// Dotted path of the offending value, e.g.
    /// `accessControl.aws.greengrass.ipc.pubsub.p1.operations[0]`.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

/// The policies of one component, by service identifier.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policies {
    by_service: BTreeMap<String, Vec<Policy>>,
    permissive: bool,
}

fn get_ci<'a>(map: &'a serde_json::Map<String, Value>, key: &str) -> Option<(&'a str, &'a Value)> {
    map.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(k, v)| (k.as_str(), v))
}

impl Policies {
    /// Policies granting every operation of every service on every resource (the
    /// emulator's default component). Hard-coded caller rules still apply.
    pub fn permissive() -> Policies {
        Policies {
            by_service: BTreeMap::new(),
            permissive: true,
        }
    }

    /// Whether these are [`Policies::permissive`].
    pub fn is_permissive(&self) -> bool {
        self.permissive
    }

    /// The policies for one service identifier.
    pub fn for_service(&self, service: &str) -> &[Policy] {
        self.by_service.get(service).map_or(&[], Vec::as_slice)
    }

    /// Number of policies over all services.
    pub fn len(&self) -> usize {
        self.by_service.values().map(Vec::len).sum()
    }

    /// Whether there is no policy.
    pub fn is_empty(&self) -> bool {
        self.len() == 0 && !self.permissive
    }

    /// Reads an `accessControl` value (`Value::Null` = none). `base` is the dotted path of
    /// the value in its document, used in problems.
    ///
    /// Strict (`strict = true`, used for recipes): the first problem is returned as the
    /// error. Lenient (runtime configuration changes, like the nucleus): invalid
    /// resources and policies are dropped and reported in the returned list.
    ///
    /// Entries under unknown service identifiers are ignored (and reported) in both modes.
    ///
    /// # Errors
    /// In strict mode, the first problem.
    pub fn parse(
        value: &Value,
        base: &str,
        strict: bool,
    ) -> Result<(Policies, Vec<PolicyProblem>), PolicyProblem> {
        let mut r = Reporter {
            strict,
            problems: Vec::new(),
        };
        let mut policies = Policies::default();
        let services = match value {
            Value::Null => return Ok((policies, Vec::new())),
            Value::Object(m) => m,
            _ => {
                r.report(
                    base.to_owned(),
                    "must be a map of IPC service identifiers".into(),
                    true,
                )?;
                return Ok((policies, r.problems));
            }
        };
        for (service, entries) in services {
            let spath = format!("{base}.{service}");
            let Some(known) = grantable_operations(service) else {
                r.report(
                    spath,
                    format!("unknown IPC service identifier {service:?}: ignored"),
                    false,
                )?;
                continue;
            };
            let Value::Object(entries) = entries else {
                r.report(
                    spath,
                    "must be a map of policy ids to policies".into(),
                    true,
                )?;
                continue;
            };
            for (id, policy) in entries {
                if let Some(policy) = parse_policy(&mut r, &spath, service, &known, id, policy)? {
                    policies
                        .by_service
                        .entry(service.clone())
                        .or_default()
                        .push(policy);
                }
            }
        }
        Ok((policies, r.problems))
    }
}

/// Collects the problems of an `accessControl` document; in strict mode a fatal one is
/// returned as the error.
struct Reporter {
    strict: bool,
    problems: Vec<PolicyProblem>,
}

impl Reporter {
    fn report(&mut self, path: String, problem: String, fatal: bool) -> Result<(), PolicyProblem> {
        let p = PolicyProblem { path, problem };
        if self.strict && fatal {
            Err(p)
        } else {
            self.problems.push(p);
            Ok(())
        }
    }
}

/// Reads one policy `id` of `service`; `None` when it is dropped.
fn parse_policy(
    r: &mut Reporter,
    spath: &str,
    service: &str,
    known: &[&str],
    id: &str,
    policy: &Value,
) -> Result<Option<Policy>, PolicyProblem> {
    let ppath = format!("{spath}.{id}");
    if id.trim().is_empty() {
        r.report(ppath, "a policy id must be non-empty".into(), true)?;
        return Ok(None);
    }
    let Value::Object(policy) = policy else {
        r.report(
            ppath,
            "a policy must be a map with operations and resources".into(),
            true,
        )?;
        return Ok(None);
    };
    let description = match get_ci(policy, "policyDescription") {
        None | Some((_, Value::Null)) => None,
        Some((_, Value::String(s))) => Some(s.clone()),
        Some((k, _)) => {
            r.report(format!("{ppath}.{k}"), "must be a string".into(), true)?;
            None
        }
    };
    let Some(operations) = parse_operations(r, &ppath, service, known, policy)? else {
        return Ok(None);
    };
    // An unregistered operation is reported but does not void the policy: the
    // nucleus logs it and still adds the policy's permissions
    // (AuthorizationHandler.loadAuthorizationPolicies in aws-greengrass-nucleus).
    let Some(resources) = parse_resources(r, &ppath, service, policy)? else {
        return Ok(None);
    };
    Ok(Some(Policy {
        id: id.to_owned(),
        description,
        operations,
        resources,
    }))
}

/// The `operations` of a policy; `None` when the policy is dropped.
fn parse_operations(
    r: &mut Reporter,
    ppath: &str,
    service: &str,
    known: &[&str],
    policy: &serde_json::Map<String, Value>,
) -> Result<Option<Vec<String>>, PolicyProblem> {
    let (okey, ops) = match get_ci(policy, "operations") {
        Some((k, Value::Array(a))) if !a.is_empty() => (k, a),
        Some((k, Value::Array(_))) => {
            r.report(
                format!("{ppath}.{k}"),
                "must list at least one operation".into(),
                true,
            )?;
            return Ok(None);
        }
        Some((k, _)) => {
            r.report(
                format!("{ppath}.{k}"),
                "must be a list of operations".into(),
                true,
            )?;
            return Ok(None);
        }
        None => {
            r.report(format!("{ppath}.operations"), "is missing".into(), true)?;
            return Ok(None);
        }
    };
    let mut operations = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let opath = format!("{ppath}.{okey}[{i}]");
        match op.as_str() {
            Some("*") => operations.push("*".to_owned()),
            Some(s) => match s.strip_prefix("aws.greengrass#") {
                Some(short) if known.contains(&short) => operations.push(s.to_owned()),
                _ => {
                    r.report(
                        opath,
                        format!(
                            "{s:?} is not an operation of {service} (expected \"*\" or one of {})",
                            known
                                .iter()
                                .map(|o| format!("aws.greengrass#{o}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        true,
                    )?;
                }
            },
            None => {
                r.report(opath, "an operation must be a string".into(), true)?;
            }
        }
    }
    Ok(Some(operations))
}

/// The `resources` of a policy; `None` when the policy is dropped.
fn parse_resources(
    r: &mut Reporter,
    ppath: &str,
    service: &str,
    policy: &serde_json::Map<String, Value>,
) -> Result<Option<Vec<Resource>>, PolicyProblem> {
    let mut resources = Vec::new();
    match get_ci(policy, "resources") {
        None | Some((_, Value::Null)) => {}
        Some((k, Value::Array(items))) => {
            for (i, item) in items.iter().enumerate() {
                let rpath = format!("{ppath}.{k}[{i}]");
                match item.as_str() {
                    Some(s) => match Resource::parse(s, Matching::of_service(service)) {
                        Ok(res) => resources.push(res),
                        Err(e) => r.report(rpath, format!("{e}: resource dropped"), true)?,
                    },
                    None => r.report(rpath, "a resource must be a string".into(), true)?,
                }
            }
        }
        Some((k, _)) => {
            r.report(
                format!("{ppath}.{k}"),
                "must be a list of resources".into(),
                true,
            )?;
            return Ok(None);
        }
    }
    Ok(Some(resources))
}

/// Why a call was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    /// The message sent in the `UnauthorizedError`.
    pub message: String,
}

/// Decides whether `caller` (with `policies`) may run `operation` (short name) on each of
/// `resources` (the resource strings of the request; several for `PutComponentMetric`).
///
/// # Errors
/// [`Denied`] with a message naming the component, the operation, the resource and the
/// service whose policy is missing.
pub fn authorize(
    caller: &str,
    policies: &Policies,
    operation: &str,
    resources: &[String],
) -> Result<(), Denied> {
    authorize_as(caller, policies, operation, resources, true)
}

/// [`authorize`], where `empty_denied` = an empty resource is refused before any policy
/// lookup (the Java nucleus). Nucleus lite has no such rule: a running lite 2.6.0 accepted
/// a PublishToTopic on `""` under a `*` policy (`tests/tools/lite_probe.py`).
pub(crate) fn authorize_as(
    caller: &str,
    policies: &Policies,
    operation: &str,
    resources: &[String],
    empty_denied: bool,
) -> Result<(), Denied> {
    let Some(op) = facts(operation) else {
        // Unknown operations are not the authorizer's business.
        return Ok(());
    };
    if !op.checked {
        return Ok(());
    }
    let deny = |message: String| Err(Denied { message });
    if !op.fixed_callers.is_empty() {
        if op.fixed_callers.contains(&caller) {
            return Ok(());
        }
        return deny(super::texts::nucleus_text(
            &format!("{caller} is not authorized to perform aws.greengrass#{operation}"),
            &format!("only {} may call it", op.fixed_callers.join(", ")),
        ));
    }
    if operation == "PutComponentMetric" {
        if !caller.starts_with("aws.") {
            return deny(super::texts::nucleus_text(
                &format!(
                    "Principal {caller} is not authorized to perform \
                     aws.greengrass.ipc.componentmetric:aws.greengrass#PutComponentMetric "
                ),
                "the component name must start with \"aws.\"",
            ));
        }
        if caller == STREAM_MANAGER {
            return Ok(());
        }
    }
    let Some(service) = op.service else {
        return Ok(());
    };
    if service == "aws.greengrass.Cli" && (caller == CLI || caller.starts_with(CLI_CLIENT_PREFIX)) {
        return Ok(());
    }
    if service == "aws.greengrass.ShadowManager" && caller == SHADOW_MANAGER {
        return Ok(());
    }
    if !op.grantable {
        return deny(format!(
            "{caller} is not authorized to perform aws.greengrass#{operation}: \
             the nucleus registers no such {service} operation for components"
        ));
    }
    // The nucleus refuses an empty resource string before any policy lookup ("Resource
    // cannot be empty", AuthorizationModule.isPresent in aws-greengrass-nucleus), so not
    // even a '*' policy grants it.
    if let Some(empty) = resources.iter().find(|r| empty_denied && r.is_empty()) {
        return deny(super::texts::nucleus_text(
            "Resource cannot be empty",
            &format!(
                "{caller} may not perform aws.greengrass#{operation} on resource {empty:?}: \
                 {service} never grants an empty resource"
            ),
        ));
    }
    if policies.permissive {
        return Ok(());
    }
    match resources
        .iter()
        .find(|resource| !policies.grant(service, operation, resource))
    {
        Some(resource) => deny(policy_denial(caller, service, operation, resource)),
        None => Ok(()),
    }
}

impl Policies {
    /// Whether a policy under `service` grants `operation` on `resource`.
    fn grant(&self, service: &str, operation: &str, resource: &str) -> bool {
        self.for_service(service).iter().any(|p| {
            p.allows_operation(operation) && p.resources.iter().any(|r| r.matches(resource))
        })
    }
}

/// The denial text when no policy grants the call.
fn policy_denial(caller: &str, service: &str, operation: &str, resource: &str) -> String {
    // The nucleus's text (AuthorizationHandler.isAuthorized,
    // aws-greengrass-nucleus src/main/java/com/aws/greengrass/authorization/
    // AuthorizationHandler.java:246-251), then ggipc's explanation.
    // PutComponentMetric words it its own way (ComponentMetricIPCEventStreamAgent
    // .java:209-211).
    let nucleus = if operation == "PutComponentMetric" {
        format!(
            "Principal {caller} is not authorized to perform \
             {service}:aws.greengrass#{operation} with metric name {resource}"
        )
    } else {
        format!(
            "Principal {caller} is not authorized to perform \
             {service}:aws.greengrass#{operation} on resource {resource}"
        )
    };
    super::texts::nucleus_text(
        &nucleus,
        &format!("no policy under {service} in its accessControl grants it"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pol(service: &str, ops: &[&str], resources: &[&str]) -> Policies {
        let v = json!({ service: { "p1": { "operations": ops, "resources": resources } } });
        Policies::parse(&v, "accessControl", true).unwrap().0
    }

    #[test]
    fn standard_star_matches_anywhere_and_plus_hash_are_literal() {
        let r = Resource::parse("a/*/c*", Matching::Standard).unwrap();
        assert!(r.matches("a/b/c"));
        assert!(r.matches("a/x/y/cz"));
        assert!(!r.matches("a/b/d"));
        let h = Resource::parse("a/#", Matching::Standard).unwrap();
        assert!(h.matches("a/#"));
        assert!(!h.matches("a/b"));
    }

    #[test]
    fn the_denial_names_a_metric_for_put_component_metric_and_a_resource_otherwise() {
        let metric = policy_denial("c", "svc", "PutComponentMetric", "m1");
        assert!(
            metric.contains("svc:aws.greengrass#PutComponentMetric with metric name m1"),
            "{metric}"
        );
        let other = policy_denial("c", "svc", "PublishToTopic", "t1");
        assert!(
            other.contains("svc:aws.greengrass#PublishToTopic on resource t1"),
            "{other}"
        );
    }

    #[test]
    fn mqtt_levels() {
        let r = Resource::parse("a/#", Matching::Mqtt).unwrap();
        for ok in ["a", "a/b", "a/b/c", "a/#", "a/+"] {
            assert!(r.matches(ok), "{ok}");
        }
        assert!(!r.matches("ab"));
        let p = Resource::parse("a/+/c", Matching::Mqtt).unwrap();
        assert!(p.matches("a/b/c"));
        assert!(p.matches("a/+/c"));
        assert!(!p.matches("a/b/x/c"));
        // `+` as the last level runs to the end of the topic, and no further level.
        let last = Resource::parse("a/+", Matching::Mqtt).unwrap();
        assert!(last.matches("a/bc"));
        assert!(!last.matches("a/b/c"));
        let misplaced = Resource::parse("a+/b#", Matching::Mqtt).unwrap();
        assert!(misplaced.matches("a+/b#"));
        assert!(!misplaced.matches("ax/b"));
    }

    #[test]
    fn escapes() {
        let r = Resource::parse("a/${*}/${?}/${$}{x}", Matching::Standard).unwrap();
        assert!(r.matches("a/*/?/${x}"));
        assert!(!r.matches("a/b/?/${x}"));
        assert!(Resource::parse("a?", Matching::Standard).is_err());
        assert!(Resource::parse("${iot:thingName}", Matching::Standard).is_err());
        assert!(Resource::parse("$aws/things/x", Matching::Standard).is_ok());
        assert!(Resource::parse("a${*", Matching::Standard).is_err());
        assert!(Resource::parse("a${*x}", Matching::Standard).is_err());
        assert!(Resource::parse("", Matching::Standard).is_err());
        assert!(Resource::parse("", Matching::Mqtt).is_err());
    }

    #[test]
    fn strict_parse_reports_the_path() {
        let v =
            json!({"aws.greengrass.ipc.pubsub": {"p1": {"operations": [42], "resources": ["*"]}}});
        let e = Policies::parse(&v, "accessControl", true).unwrap_err();
        assert_eq!(
            e.path,
            "accessControl.aws.greengrass.ipc.pubsub.p1.operations[0]"
        );
    }

    #[test]
    fn lenient_parse_drops_invalid_resources() {
        let v = json!({"aws.greengrass.ipc.pubsub": {"p1": {"operations": ["*"], "resources": ["a?", "b"]}}});
        let (p, problems) = Policies::parse(&v, "accessControl", false).unwrap();
        assert_eq!(problems.len(), 1);
        assert_eq!(
            p.for_service("aws.greengrass.ipc.pubsub")[0]
                .resources
                .len(),
            1
        );
    }

    #[test]
    fn hard_coded_rules() {
        let none = Policies::default();
        assert!(authorize("x", &none, "UpdateState", &[]).is_ok());
        assert!(authorize("x", &none, "ValidateAuthorizationToken", &[]).is_err());
        assert!(authorize(STREAM_MANAGER, &none, "ValidateAuthorizationToken", &[]).is_ok());
        assert!(authorize(
            "x",
            &Policies::permissive(),
            "PutComponentMetric",
            &["m".into()]
        )
        .is_err());
        assert!(authorize(CLI, &none, "ListComponents", &["*".into()]).is_ok());
        let p = pol(
            "aws.greengrass.ipc.pubsub",
            &["aws.greengrass#PublishToTopic"],
            &["a/*"],
        );
        assert!(authorize("c", &p, "PublishToTopic", &["a/b".into()]).is_ok());
        let e = authorize("c", &p, "SubscribeToTopic", &["a/b".into()]).unwrap_err();
        assert!(e.message.contains("c ") && e.message.contains("SubscribeToTopic"));
        assert!(e.message.contains("aws.greengrass.ipc.pubsub") && e.message.contains("a/b"));
    }
}
