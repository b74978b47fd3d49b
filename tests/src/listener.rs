//! The test listener: a real HTTP server on 127.0.0.1 for deploy-hooks' checks.

use crate::*;

/// How a [`TestListener`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerMode {
    /// `200 OK` to everything.
    Healthy,
    /// `500 Internal Server Error` to everything.
    Failing,
    /// Accepts connections and never answers.
    Silent,
}

/// A real HTTP server on 127.0.0.1 (a port the OS picks) standing in for a
/// deployment's test listener; it counts the requests it receives.
#[derive(Debug)]
pub struct TestListener {
    pub url: String,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TestListener {
    pub async fn start(mode: ListenerMode) -> Self {
        Self::serve(mode, None).await
    }

    /// An `https://127.0.0.1:port` listener whose certificate (for
    /// `IP:127.0.0.1`) is signed by the test CA of `tests/fixtures/tls`
    /// ([`TestListener::test_ca`]).
    pub async fn start_tls(mode: ListenerMode) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let dir = workspace_root().join("tests/fixtures/tls");
        let chain = vec![CertificateDer::from_pem_file(dir.join("listener.pem")).unwrap()];
        let key = PrivateKeyDer::from_pem_file(dir.join("listener.key")).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        Self::serve(mode, Some(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))).await
    }

    /// The roots that trust [`TestListener::start_tls`]'s certificate.
    pub fn test_ca() -> rustls::RootCertStore {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        let ca = workspace_root().join("tests/fixtures/tls/ca.pem");
        roots.add(CertificateDer::from_pem_file(ca).unwrap()).unwrap();
        roots
    }

    async fn serve(mode: ListenerMode, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().unwrap());
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else { return };
                let counter = counter.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => answer(socket, mode, &counter).await,
                        Some(acceptor) => {
                            // A client that refuses the certificate ends the handshake here.
                            if let Ok(stream) = acceptor.accept(socket).await {
                                answer(stream, mode, &counter).await;
                            }
                        }
                    }
                });
            }
        });
        Self { url, hits, task }
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Reads one request and answers it as `mode` says.
async fn answer<S>(mut socket: S, mode: ListenerMode, counter: &std::sync::atomic::AtomicUsize)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 4096];
    let mut request = Vec::new();
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let status = match mode {
        ListenerMode::Healthy => "200 OK",
        ListenerMode::Failing => "500 Internal Server Error",
        ListenerMode::Silent => {
            // Hold the connection open, answering nothing.
            std::future::pending::<()>().await;
            return;
        }
    };
    let response = format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}

impl Drop for TestListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}
