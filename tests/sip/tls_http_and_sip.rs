//! Optional TLS: with a certificate configured, the HTTP server speaks HTTPS (browsers need it for the
//! microphone) and the SIP endpoint answers over TLS.

use crate::common;

use common::*;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn tls_exchange(addr: SocketAddr, request: &[u8], until: &[u8]) -> String {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(fixture("test-ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake");
    tls.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !out.windows(until.len()).any(|w| w == until) {
        match tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn https_serves_the_page_and_sip_answers_over_tls() {
    let mut cfg = test_config("");
    cfg.http.tls_cert = Some(fixture("localhost-cert.pem"));
    cfg.http.tls_key = Some(fixture("localhost-key.pem"));
    let sip_tls: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    cfg.sip.listen_tls = Some(sip_tls);
    cfg.sip.tls_cert = Some(fixture("localhost-cert.pem"));
    cfg.sip.tls_key = Some(fixture("localhost-key.pem"));
    cfg.validate().expect("valid TLS config");
    let (gw, _) = start(cfg).await;

    let page = tls_exchange(
        gw.http_addr,
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        b"ok\n",
    )
    .await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");

    // rsipstack binds its TLS listener in the background: retry briefly until it accepts.
    let mut resp = String::new();
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(sip_tls).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let opt = "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bKtls1\r\n\
               From: <sip:mon@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: tls-1\r\nCSeq: 1 OPTIONS\r\n\
               Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    resp.push_str(&tls_exchange(sip_tls, opt.as_bytes(), b"\r\n\r\n").await);
    assert!(resp.starts_with("SIP/2.0 200"), "{resp}");
}
