//! A test phone placing a call to the gateway the way a desk phone does: INVITE with SDP, the
//! 407 challenge answered with the phone's digest credentials, ACK for the final answer; on 200
//! the phone plays its tone and records what it hears. In-dialog requests of that dialog (INFO
//! keys, BYE) go with [`Dialled::request`].

use super::call::sdp_addr;
use super::phones::AgentPhone;
use super::{digest_for, header, status};
use std::time::Duration;
use tokio::net::UdpSocket;

/// A call the phone placed: the INVITE it sent last and the gateway's final answer.
pub struct Dialled {
    /// Our INVITE (with credentials).
    pub invite: String,
    /// The final response.
    pub response: String,
}

impl Dialled {
    /// The final status.
    pub fn status(&self) -> u16 {
        status(&self.response)
    }
}

fn invite(phone: &AgentPhone, to: &str, cseq: u32, call_id: &str, sdp: &str, auth: &str) -> String {
    let (addr, user) = (phone.sip.addr, &phone.user);
    format!(
        "INVITE sip:{to}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {addr};branch=z9hG4bKdial{cseq}{call_id};rport\r\n\
         From: <sip:{user}@127.0.0.1>;tag=dial-{user}\r\nTo: <sip:{to}@127.0.0.1>\r\nCall-ID: {call_id}\r\n\
         CSeq: {cseq} INVITE\r\nMax-Forwards: 70\r\nContact: <sip:{user}@{addr}>\r\n{auth}\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

fn ack(phone: &AgentPhone, inv: &str, resp: &str) -> String {
    let to = header(resp, "To").unwrap_or_default();
    let cseq = header(inv, "CSeq")
        .and_then(|c| c.split(' ').next())
        .unwrap_or("1");
    format!(
        "ACK {} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKack{cseq}{};rport\r\nFrom: {}\r\nTo: {to}\r\n\
         Call-ID: {}\r\nCSeq: {cseq} ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        inv.split(' ').nth(1).unwrap_or_default(),
        phone.sip.addr,
        header(inv, "Call-ID").unwrap_or_default(),
        header(inv, "From").unwrap_or_default(),
        header(inv, "Call-ID").unwrap_or_default(),
    )
}

/// The next final response of call `call_id` at the phone (provisional ones, requests and
/// late retransmissions of other calls skipped).
async fn final_response(phone: &AgentPhone, call_id: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let m = phone.sip.recv(left).await.expect("a final response");
        if m.starts_with("SIP/2.0 ") && status(&m) >= 200 && header(&m, "Call-ID") == Some(call_id)
        {
            return m;
        }
    }
}

impl AgentPhone {
    /// Dials `to` with the phone's `password`; on 200 the phone talks (its tone) and listens.
    pub async fn dial(&mut self, to: &str, password: &str) -> Dialled {
        let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = rtp.local_addr().unwrap().port();
        let sdp = format!(
            "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
        );
        let call_id = format!("dial-{}-{}", self.user, rand_suffix());
        let gw = self.gateway();
        let first = invite(self, to, 1, &call_id, &sdp, "");
        self.sip.send(gw, first.as_bytes()).await;
        let challenge = final_response(self, &call_id).await;
        self.sip
            .send(gw, ack(self, &first, &challenge).as_bytes())
            .await;
        assert_eq!(status(&challenge), 407, "{challenge}");
        let uri = format!("sip:{to}@127.0.0.1");
        let auth = digest_for(
            header(&challenge, "Proxy-Authenticate").expect("a challenge"),
            &self.user,
            password,
            rsipstack::rsip::Method::Invite,
            &uri,
        );
        let second = invite(
            self,
            to,
            2,
            &call_id,
            &sdp,
            &format!("Proxy-Authorization: {auth}\r\n"),
        );
        self.sip.send(gw, second.as_bytes()).await;
        let response = final_response(self, &call_id).await;
        self.sip
            .send(gw, ack(self, &second, &response).as_bytes())
            .await;
        if status(&response) == 200 {
            let target = sdp_addr(&response).expect("the answer has SDP");
            self.start_rtp(rtp, target);
        }
        Dialled {
            invite: second,
            response,
        }
    }

    /// The gateway's next final response (to an in-dialog request of ours), answering nothing.
    pub async fn final_response(&self) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let m = self.sip.recv(left).await.expect("a response");
            if m.starts_with("SIP/2.0 ") && !m.starts_with("SIP/2.0 1") {
                return m;
            }
        }
    }

    /// An in-dialog request (`INFO`, `BYE`) in a dialog the phone placed.
    pub async fn request_in(&self, d: &Dialled, method: &str, cseq: u32, extra: &str, body: &str) {
        let target = header(&d.response, "Contact")
            .and_then(|c| c.split('<').nth(1))
            .and_then(|c| c.split('>').next())
            .expect("the gateway's Contact")
            .to_string();
        let msg = format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKin{cseq}{method};rport\r\nFrom: {}\r\nTo: {}\r\n\
             Call-ID: {}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            self.sip.addr,
            header(&d.invite, "From").unwrap_or_default(),
            header(&d.response, "To").unwrap_or_default(),
            header(&d.invite, "Call-ID").unwrap_or_default(),
            body.len()
        );
        self.sip.send(self.gateway(), msg.as_bytes()).await;
    }
}

fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed) + std::process::id()
}
