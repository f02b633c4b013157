//! What a phone of this gateway (an agent's or a supervisor's, authenticated) may dial, sans-IO:
//! the supervision feature code (`*55` + an agent id or a call id), another agent, a queue, a
//! supervisor. Anything else (a number for the trunk above all: toll fraud) is refused; nothing
//! an internal phone dials ever leaves through a trunk.

/// What a dialled string means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialled {
    /// The feature code: supervise the call of this agent, or this call id.
    Supervise(String),
    /// Another agent.
    Agent(String),
    /// A queue.
    Queue(String),
    /// A supervisor.
    Supervisor(String),
    /// Not something an internal phone may call.
    Refused,
}

/// The names the dial plan knows.
pub struct Directory<'a> {
    /// The supervision feature code (`*55`).
    pub feature_code: &'a str,
    /// Agent ids.
    pub agents: &'a [&'a str],
    /// Queue names.
    pub queues: &'a [&'a str],
    /// Supervisor ids.
    pub supervisors: &'a [&'a str],
}

/// Reads the Request-URI's user part `dialled` (`%2A55` is `*55`).
pub fn route(dialled: &str, d: &Directory<'_>) -> Dialled {
    let dialled = dialled.replace("%2A", "*").replace("%2a", "*");
    if !d.feature_code.is_empty() {
        if let Some(rest) = dialled.strip_prefix(d.feature_code) {
            return match rest {
                "" => Dialled::Refused,
                target => Dialled::Supervise(target.to_string()),
            };
        }
    }
    let is = |names: &[&str]| names.contains(&dialled.as_str());
    if is(d.agents) {
        Dialled::Agent(dialled)
    } else if is(d.queues) {
        Dialled::Queue(dialled)
    } else if is(d.supervisors) {
        Dialled::Supervisor(dialled)
    } else {
        Dialled::Refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> Directory<'static> {
        Directory {
            feature_code: "*55",
            agents: &["1001", "1002"],
            queues: &["support"],
            supervisors: &["9001"],
        }
    }

    #[test]
    fn internal_names_and_the_feature_code_route_and_numbers_never_do() {
        let d = dir();
        assert_eq!(route("1002", &d), Dialled::Agent("1002".into()));
        assert_eq!(route("support", &d), Dialled::Queue("support".into()));
        assert_eq!(route("9001", &d), Dialled::Supervisor("9001".into()));
        assert_eq!(route("*551001", &d), Dialled::Supervise("1001".into()));
        assert_eq!(
            route("%2A55494031", &d),
            Dialled::Supervise("494031".into())
        );
        for fraud in [
            "+15550100",
            "0015550100",
            "15550100",
            "*55",
            "",
            "1001 ",
            "support2",
        ] {
            assert_eq!(route(fraud, &d), Dialled::Refused, "{fraud:?}");
        }
        let no_code = Directory {
            feature_code: "",
            ..dir()
        };
        assert_eq!(route("*551001", &no_code), Dialled::Refused);
    }
}
