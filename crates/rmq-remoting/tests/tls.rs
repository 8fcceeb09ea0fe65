//! TLS connections against a TLS server of the test's own (rustls, certificates in tests/data/tls): request
//! and response over TLS, large bodies in many records, pipelined requests, a client certificate a server
//! requires, and the refusals (no client certificate, an untrusted server, the wrong pinned certificate).
//! The real-server proof is crates/rmq-it/tests/tls.rs (Apache RocketMQ 5.5.0 with TLS enforcing).

#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rmq_protocol::{FrameDecoder, RemotingCommand, RequestCode, ResponseCode};
use rmq_remoting::{ClientCert, RemotingClient, RemotingConfig, TlsConfig, TlsTrust};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tls")
        .join(name)
}

/// A TLS server on loopback answering every request with SUCCESS, the request's body echoed. With
/// `require_client_cert`, clients must present a certificate signed by the test CA.
fn server(require_client_cert: bool) -> String {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(data("server.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(data("server.key")).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(data("ca.pem")).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = Arc::new(builder.with_single_cert(chain, key).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let config = config.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let decoder = FrameDecoder::new(16 << 20);
                let mut buf = BytesMut::new();
                let mut chunk = vec![0u8; 64 * 1024];
                loop {
                    while let Ok(Some(req)) = decoder.decode(&mut buf) {
                        let mut resp = RemotingCommand::response(ResponseCode::SUCCESS, None)
                            .with_body(req.body.clone());
                        resp.opaque = req.opaque;
                        resp.mark_response();
                        let mut out = BytesMut::new();
                        resp.encode(&mut out).unwrap();
                        if tls.write_all(&out).is_err() {
                            return;
                        }
                    }
                    match tls.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    addr
}

fn client(tls: TlsConfig) -> Result<RemotingClient, rmq_remoting::RemotingError> {
    RemotingClient::new(RemotingConfig {
        tls: Some(tls),
        connect_timeout: Duration::from_secs(2),
        ..RemotingConfig::default()
    })
}

fn call(c: &RemotingClient, addr: &str, body: Bytes) -> Result<RemotingCommand, String> {
    let req = RemotingCommand::request(RequestCode::GET_ROUTEINFO_BY_TOPIC).with_body(body);
    c.invoke_sync(addr, req, Duration::from_secs(3))
        .map_err(|e| e.to_string())
}

#[test]
fn requests_and_large_bodies_go_over_tls() {
    let addr = server(false);
    let c = client(TlsConfig::with_ca_file(data("ca.pem"))).unwrap();
    let small = call(&c, &addr, Bytes::from_static(b"hello")).unwrap();
    assert_eq!(&small.body[..], b"hello");
    // 300 KiB: many TLS records each way, written from the body's own buffer.
    let big: Bytes = (0..300 * 1024)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    assert_eq!(call(&c, &addr, big.clone()).unwrap().body, big);
    // Pipelined from many threads over the one connection.
    std::thread::scope(|s| {
        for t in 0..16u8 {
            let (c, addr) = (&c, &addr);
            s.spawn(move || {
                for i in 0..50u8 {
                    let body = Bytes::from(vec![t, i, 7]);
                    assert_eq!(call(c, addr, body.clone()).unwrap().body, body);
                }
            });
        }
    });
    assert_eq!(c.connection_count(), 1);
    c.shutdown();
}

#[test]
fn a_server_that_requires_a_client_certificate_gets_it() {
    let addr = server(true);
    let with_cert = client(TlsConfig {
        client_cert: Some(ClientCert {
            cert_chain: data("client.pem"),
            key: data("client.key"),
        }),
        ..TlsConfig::with_ca_file(data("ca.pem"))
    })
    .unwrap();
    assert_eq!(
        &call(&with_cert, &addr, Bytes::from_static(b"mtls"))
            .unwrap()
            .body[..],
        b"mtls"
    );
    let without = client(TlsConfig::with_ca_file(data("ca.pem"))).unwrap();
    assert!(call(&without, &addr, Bytes::from_static(b"x")).is_err());
}

#[test]
fn trust_is_checked() {
    let addr = server(false);
    // The server's own certificate pinned: accepted whoever signed it.
    let pinned = client(TlsConfig {
        trust: TlsTrust::Pinned(data("server.pem")),
        ..TlsConfig::default()
    })
    .unwrap();
    assert!(call(&pinned, &addr, Bytes::new()).is_ok());
    // Another certificate pinned: refused at the handshake.
    let wrong = client(TlsConfig {
        trust: TlsTrust::Pinned(data("client.pem")),
        ..TlsConfig::default()
    })
    .unwrap();
    let e = call(&wrong, &addr, Bytes::new()).unwrap_err();
    assert!(e.contains("TLS handshake failed"), "{e}");
    // The name checked can be set: the certificate holds localhost, not this name.
    let misnamed = client(TlsConfig {
        server_name: Some("broker.example".into()),
        ..TlsConfig::with_ca_file(data("ca.pem"))
    })
    .unwrap();
    let e = call(&misnamed, &addr, Bytes::new()).unwrap_err();
    assert!(e.contains("TLS handshake failed"), "{e}");
    let named = client(TlsConfig {
        server_name: Some("localhost".into()),
        ..TlsConfig::with_ca_file(data("ca.pem"))
    })
    .unwrap();
    assert!(call(&named, &addr, Bytes::new()).is_ok());
    // A file that is not there is an error when the client is made, before any connect.
    let e = client(TlsConfig::with_ca_file(data("missing.pem"))).unwrap_err();
    assert!(e.to_string().contains("missing.pem"), "{e}");
}
