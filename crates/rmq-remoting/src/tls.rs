//! TLS settings ([`TlsConfig`]) and, with the `tls` feature, the rustls client configuration built from
//! them once, when the client is made (a missing or unreadable file is an error then, not at the first
//! connect).
//!
//! RocketMQ servers take TLS on the same port as plaintext (they look at the first byte); with
//! `tls.server.mode=enforcing` they close plaintext connections. The Java client checks neither the
//! certificate chain nor the name in its default test mode; here the default is to verify, and
//! [`TlsTrust::AnyCertificate`] is the explicit opt-out.

use std::path::PathBuf;

/// Which server certificates a TLS connection accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsTrust {
    /// Certificates that chain to the operating system's roots, for the name dialed.
    SystemRoots,
    /// Certificates that chain to a CA in this PEM file, for the name dialed.
    CaFile(PathBuf),
    /// Exactly the certificates in this PEM file, whoever signed them and whatever names they hold: for
    /// self-signed test setups. The handshake signature is still checked.
    Pinned(PathBuf),
    /// Any certificate, as the Java client's `tls.test.mode.enable`: the traffic is encrypted but the
    /// server is not authenticated. For tests only.
    AnyCertificate,
}

/// A client certificate for servers that require one (`tls.server.need.client.auth=require`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCert {
    /// PEM certificate chain, leaf first.
    pub cert_chain: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1), unencrypted.
    pub key: PathBuf,
}

/// TLS for every connection of a client (name servers and brokers). Needs the `tls` feature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// Which server certificates to accept. Default: the system roots.
    pub trust: TlsTrust,
    /// A client certificate to present. Default none.
    pub client_cert: Option<ClientCert>,
    /// The name the server certificate must hold; default: the host of the address dialed (an IP address
    /// is matched against the certificate's IP addresses).
    pub server_name: Option<String>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            trust: TlsTrust::SystemRoots,
            client_cert: None,
            server_name: None,
        }
    }
}

impl TlsConfig {
    /// Trusting the CAs of the PEM file `ca`.
    pub fn with_ca_file(ca: impl Into<PathBuf>) -> TlsConfig {
        TlsConfig {
            trust: TlsTrust::CaFile(ca.into()),
            ..TlsConfig::default()
        }
    }
}

#[cfg(feature = "tls")]
pub(crate) use enabled::Tls;

#[cfg(feature = "tls")]
mod enabled {
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
    use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

    use super::{TlsConfig, TlsTrust};

    /// The rustls side of a [`TlsConfig`], built once.
    #[derive(Clone)]
    pub(crate) struct Tls {
        config: Arc<ClientConfig>,
        server_name: Option<ServerName<'static>>,
    }

    impl std::fmt::Debug for Tls {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Tls")
                .field("server_name", &self.server_name)
                .finish_non_exhaustive()
        }
    }

    /// ring: pure Rust and assembly built with a C compiler only (aws-lc-rs, rustls' default, needs
    /// CMake and a much longer build); it has the AES-GCM suites and the X25519 / P-256 / P-384 groups
    /// RocketMQ's JDK servers offer.
    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn certs(path: &std::path::Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("bad PEM in {what} {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("no certificate in {what} {}", path.display()));
        }
        Ok(certs)
    }

    impl Tls {
        pub(crate) fn new(c: &TlsConfig) -> Result<Tls, String> {
            let provider = provider();
            let builder = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?;
            let algorithms = provider.signature_verification_algorithms;
            let builder =
                match &c.trust {
                    TlsTrust::SystemRoots => {
                        let found = rustls_native_certs::load_native_certs();
                        let mut roots = RootCertStore::empty();
                        let (added, _) = roots.add_parsable_certificates(found.certs);
                        if added == 0 {
                            return Err(format!(
                                "no usable system root certificate found ({} errors)",
                                found.errors.len()
                            ));
                        }
                        builder.with_root_certificates(roots)
                    }
                    TlsTrust::CaFile(p) => {
                        let mut roots = RootCertStore::empty();
                        for cert in certs(p, "CA file")? {
                            roots.add(cert).map_err(|e| {
                                format!("bad CA certificate in {}: {e}", p.display())
                            })?;
                        }
                        builder.with_root_certificates(roots)
                    }
                    TlsTrust::Pinned(p) => {
                        builder
                            .dangerous()
                            .with_custom_certificate_verifier(Arc::new(Accept {
                                pinned: Some(certs(p, "pinned certificate file")?),
                                algorithms,
                            }))
                    }
                    TlsTrust::AnyCertificate => builder
                        .dangerous()
                        .with_custom_certificate_verifier(Arc::new(Accept {
                            pinned: None,
                            algorithms,
                        })),
                };
            let config = match &c.client_cert {
                None => builder.with_no_client_auth(),
                Some(cc) => {
                    let chain = certs(&cc.cert_chain, "client certificate")?;
                    let key = PrivateKeyDer::from_pem_file(&cc.key).map_err(|e| {
                        format!("cannot read the client key {}: {e}", cc.key.display())
                    })?;
                    builder
                        .with_client_auth_cert(chain, key)
                        .map_err(|e| format!("bad client certificate or key: {e}"))?
                }
            };
            let server_name = match &c.server_name {
                None => None,
                Some(n) => Some(
                    ServerName::try_from(n.clone())
                        .map_err(|e| format!("bad TLS server name {n:?}: {e}"))?,
                ),
            };
            Ok(Tls {
                config: Arc::new(config),
                server_name,
            })
        }

        /// A client session for a connection to `host`.
        pub(crate) fn session(&self, host: &str) -> Result<rustls::ClientConnection, String> {
            let name = match &self.server_name {
                Some(n) => n.clone(),
                None => ServerName::try_from(host.to_owned())
                    .map_err(|e| format!("{host:?} is not a TLS server name: {e}"))?,
            };
            rustls::ClientConnection::new(self.config.clone(), name).map_err(|e| e.to_string())
        }
    }

    /// Accepts the pinned certificates (or, with none, any), still verifying handshake signatures.
    #[derive(Debug)]
    struct Accept {
        pinned: Option<Vec<CertificateDer<'static>>>,
        algorithms: WebPkiSupportedAlgorithms,
    }

    impl ServerCertVerifier for Accept {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            match &self.pinned {
                Some(pinned) if !pinned.iter().any(|p| p.as_ref() == end_entity.as_ref()) => Err(
                    rustls::Error::General("the server's certificate is not the pinned one".into()),
                ),
                _ => Ok(ServerCertVerified::assertion()),
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    }
}
