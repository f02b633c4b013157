//! Consult calls and attended transfer, sans-IO. An agent (the transferor) puts the customer on
//! hold and talks to a colleague (the target) before handing the customer over: from the desk
//! phone (the phone holds, dials the colleague; its second dialog is the consult leg; a REFER
//! with `Replaces` naming that dialog completes the transfer, RFC 3891) or from a console over
//! REST (the transferor's own leg talks to the target). The customer never sees any of it: the
//! gateway bridges the customer to the target's leg itself. Then: complete (the target takes the
//! call, the transferor leaves), three-way (everybody together), swap (the transferor talks to the
//! customer or the target in turn), cancel (the target leaves, the customer is back).

use super::parties::{refuse, Refusal};
use super::{CallController, CallOutput, Phase};
use crate::acd::OfferResult;

/// A consult call in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Consult {
    from: String,
    target: String,
    /// The transferor's second dialog (a desk phone's consult call), by party name.
    leg: Option<String>,
    answered: bool,
    /// The transferor talks to the customer again; the target waits.
    swapped: bool,
}

/// Who talks to whom in a consult, for the routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsultView {
    /// The party whose leg talks to the target: the consult leg, or the transferor's own.
    pub talker: String,
    /// The target (an agent id).
    pub target: String,
}

impl CallController {
    /// Who talks in the consult now (`None`: no consult, the target has not answered, or swapped).
    pub fn consult(&self) -> Option<ConsultView> {
        let c = self.consult.as_ref().filter(|c| c.answered && !c.swapped)?;
        Some(ConsultView {
            talker: c.leg.clone().unwrap_or_else(|| c.from.clone()),
            target: c.target.clone(),
        })
    }

    /// The party names a consult involves (target, consult leg), for the shell's bookkeeping.
    pub fn consult_parties(&self) -> Vec<&str> {
        self.consult
            .iter()
            .flat_map(|c| std::iter::once(c.target.as_str()).chain(c.leg.as_deref()))
            .collect()
    }

    /// Whether `from` (or, for `None`, the call's only agent) may consult now: the agent who would.
    pub fn check_consult(&self, from: Option<&str>) -> Result<String, Refusal> {
        if !matches!(self.phase, Phase::Connected { .. }) {
            return Err(refuse(
                "not_connected",
                format!(
                    "the call is {}: consult from a connected call",
                    self.state().name()
                ),
            ));
        }
        if self.consult.is_some() {
            return Err(refuse(
                "consult_in_progress",
                "a consult call is in progress",
            ));
        }
        match from {
            Some(a) if self.agents.iter().any(|x| x == a) => Ok(a.to_string()),
            Some(a) => Err(refuse("not_in_call", format!("{a} is not in the call"))),
            None if self.agents.len() == 1 => Ok(self.agents[0].clone()),
            None => Err(refuse(
                "ambiguous",
                "several agents are in the call: consult from a phone",
            )),
        }
    }

    /// `from` consults `target` (claimed from the ACD by the shell): the target rings. `leg` is
    /// the transferor's consult dialog (a desk phone), answered when the target answers; without
    /// one the customer is put on hold here (a desk phone holds it itself).
    pub fn handle_consult(
        &mut self,
        from: &str,
        target: &str,
        leg: Option<String>,
    ) -> Result<(), Refusal> {
        let from = self.check_consult(Some(from))?;
        if self.agents.iter().any(|a| a == target) || self.ringing().any(|a| a == target) {
            return Err(refuse(
                "already_in_call",
                format!("{target} is in the call"),
            ));
        }
        if leg.is_none() {
            self.set_held(true);
        }
        self.consult = Some(Consult {
            from,
            target: target.into(),
            leg,
            answered: false,
            swapped: false,
        });
        self.out.push_back(CallOutput::Invite {
            agent: target.into(),
        });
        Ok(())
    }

    /// The target answered: the consult talks (a desk phone's consult dialog is answered now).
    pub(super) fn consult_answered(&mut self, agent: &str) -> bool {
        let Some(c) = self.consult.as_mut().filter(|c| c.target == agent) else {
            return false;
        };
        c.answered = true;
        let leg = c.leg.clone();
        self.report(agent, OfferResult::Answered);
        if let Some(party) = leg {
            self.out.push_back(CallOutput::AcceptLeg { party });
        }
        true
    }

    /// The target refused or did not answer: the consult is over.
    pub(super) fn consult_failed(&mut self, agent: &str, status: u16) -> bool {
        self.give_up_target(agent, status, false)
    }

    /// The ACD gave up on the target (its ring time is over): the consult is over, as when the
    /// target does not answer (the ACD knows already; the target's phone is CANCELled).
    pub(super) fn consult_cancelled(&mut self, agent: &str) -> bool {
        self.give_up_target(agent, 480, true)
    }

    /// An unanswered target is given up: the ACD is told (unless it gave up itself), the desk
    /// phone's consult dialog is refused with `status`, a console's held customer is back.
    fn give_up_target(&mut self, agent: &str, status: u16, by_acd: bool) -> bool {
        let Some(c) = self
            .consult
            .clone()
            .filter(|c| c.target == agent && !c.answered)
        else {
            return false;
        };
        self.consult = None;
        if by_acd {
            self.out.push_back(CallOutput::Cancel {
                agent: agent.into(),
            });
        } else {
            self.report(agent, OfferResult::Rejected(status));
        }
        match c.leg {
            Some(party) => self.out.push_back(CallOutput::RejectLeg { party, status }),
            None => self.set_held(false),
        }
        true
    }

    /// The target or the consult leg hung up, or its media died (`lost`: its dialog is ended
    /// too): the consult is over and the other side is ended.
    pub(super) fn consult_gone(&mut self, party: &str, lost: bool) -> bool {
        let Some(c) = self.consult.clone() else {
            return false;
        };
        let ours = party == c.target || c.leg.as_deref() == Some(party);
        if lost && ours {
            self.out.push_back(CallOutput::Bye {
                agent: party.into(),
            });
        }
        if party == c.target && c.answered {
            self.consult = None;
            self.release_consult_target(&c.target);
            match c.leg {
                Some(leg) => self.out.push_back(CallOutput::Bye { agent: leg }),
                None => self.set_held(false),
            }
            true
        } else if c.leg.as_deref() == Some(party) {
            // The desk phone hung up its consult call (or cancelled it while the target rang).
            self.end_consult_target(&c);
            self.consult = None;
            if !c.answered {
                // Its dialog was never answered: the shell forgets it.
                self.out.push_back(CallOutput::RejectLeg {
                    party: party.into(),
                    status: 487,
                });
            }
            true
        } else {
            false
        }
    }

    fn release_consult_target(&mut self, target: &str) {
        self.out.push_back(CallOutput::AgentReleased {
            agent: target.into(),
        });
    }

    /// The target's leg ends (CANCEL while it rings, BYE once answered) and it is released.
    fn end_consult_target(&mut self, c: &Consult) {
        if c.answered {
            self.out.push_back(CallOutput::Bye {
                agent: c.target.clone(),
            });
            self.release_consult_target(&c.target);
        } else {
            self.out.push_back(CallOutput::Cancel {
                agent: c.target.clone(),
            });
            self.report(&c.target, OfferResult::Rejected(487));
        }
    }

    fn answered_consult(&self) -> Result<Consult, Refusal> {
        if !matches!(self.phase, Phase::Connected { .. }) {
            return Err(refuse("not_connected", "the call is not connected"));
        }
        match &self.consult {
            None => Err(refuse("no_consult", "no consult call is in progress")),
            Some(c) if !c.answered => Err(refuse(
                "consult_not_answered",
                format!("{} has not answered yet", c.target),
            )),
            Some(c) => Ok(c.clone()),
        }
    }

    /// The target takes the call; the transferor (both its legs) leaves.
    pub fn handle_consult_complete(&mut self) -> Result<(), Refusal> {
        let c = self.answered_consult()?;
        self.consult = None;
        if let Some(leg) = &c.leg {
            self.out.push_back(CallOutput::Bye { agent: leg.clone() });
        }
        self.out.push_back(CallOutput::Bye {
            agent: c.from.clone(),
        });
        self.leave(&c.from);
        self.join(&c.target);
        // The customer's widget shows the hand-over: transferring, then connected.
        self.out
            .push_back(CallOutput::State(super::CallState::Transferring));
        let held = self.is_held();
        self.set_held(false);
        if !held {
            self.out.push_back(CallOutput::State(self.state()));
        }
        Ok(())
    }

    /// Everybody together: the target joins the call, the customer is back.
    pub fn handle_consult_threeway(&mut self) -> Result<(), Refusal> {
        let c = self.answered_consult()?;
        self.consult = None;
        if let Some(leg) = &c.leg {
            self.out.push_back(CallOutput::Bye { agent: leg.clone() });
        }
        self.join(&c.target);
        self.set_held(false);
        Ok(())
    }

    /// The transferor talks to the customer (the target waits), or to the target again.
    pub fn handle_consult_swap(&mut self) -> Result<(), Refusal> {
        let c = self.answered_consult()?;
        let swapped = !c.swapped;
        if let Some(x) = self.consult.as_mut() {
            x.swapped = swapped;
        }
        self.set_held(!swapped);
        Ok(())
    }

    /// The consult ends: the target leaves, the customer is back with the transferor.
    pub fn handle_consult_cancel(&mut self) -> Result<(), Refusal> {
        let Some(c) = self.consult.take() else {
            return Err(refuse("no_consult", "no consult call is in progress"));
        };
        self.end_consult_target(&c);
        if let Some(leg) = &c.leg {
            let status = 487;
            if c.answered {
                self.out.push_back(CallOutput::Bye { agent: leg.clone() });
            } else {
                self.out.push_back(CallOutput::RejectLeg {
                    party: leg.clone(),
                    status,
                });
            }
        }
        self.set_held(false);
        Ok(())
    }

    /// The call ends (or waits in the queue again) during a consult: its target and leg end too.
    pub(super) fn drop_consult(&mut self) {
        if let Some(c) = self.consult.take() {
            self.end_consult_target(&c);
            if let Some(leg) = c.leg {
                let out = if c.answered {
                    CallOutput::Bye { agent: leg }
                } else {
                    CallOutput::RejectLeg {
                        party: leg,
                        status: 487,
                    }
                };
                self.out.push_back(out);
            }
        }
    }

    /// A REFER from `party` with `Replaces` naming the dialog of `replaced` (RFC 3891): the
    /// attended transfer of a desk phone. The status to answer the REFER with.
    pub fn handle_refer_replaces(&mut self, party: &str, replaced: &str) -> u16 {
        let Some(c) = self.consult.clone() else {
            return 481;
        };
        let names_consult = |p: &str| p == c.from || c.leg.as_deref() == Some(p) || p == c.target;
        if !names_consult(party) || !names_consult(replaced) || party == replaced {
            return 481;
        }
        match self.handle_consult_complete() {
            Ok(()) => 202,
            Err(_) => 481,
        }
    }
}
