//! The HTTPS listener: an accept loop with tokio-rustls and hyper serving an axum `Router`, which hands
//! each request the client certificate of its connection (if any) as a request extension.

use std::{convert::Infallible, io, net::SocketAddr, sync::Arc, time::Duration};

use axum::Router;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use rustls_pki_types::CertificateDer;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The leaf certificate the client presented on this request's connection, verified by rustls against
/// the federation CA root (chain, validity, client-auth usage). `None` when it presented none, which
/// TLS allows so that enrollment can share the listener.
#[derive(Clone, Debug)]
pub(crate) struct ClientCertificate(pub(crate) Option<Arc<CertificateDer<'static>>>);

/// A server accepting connections in the background.
#[derive(Debug)]
pub(crate) struct RunningServer {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningServer {
    /// Where it listens.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections and waits for the accept loop to end. Connections already open finish
    /// on their own.
    pub(crate) async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Binds `listen` (port 0 picks a free port).
pub(crate) async fn bind(listen: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(listen).await
}

/// Serves `router` over TLS on `listener` until shut down.
pub(crate) fn spawn(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: Router,
) -> io::Result<RunningServer> {
    let local_addr = listener.local_addr()?;
    let (shutdown, mut stop) = watch::channel(false);
    let acceptor = TlsAcceptor::from(tls);
    let task = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = stop.changed() => break,
                accepted = listener.accept() => accepted,
            };
            let (tcp, remote) = match accepted {
                Ok(connection) => connection,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accepting a connection failed: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let router = router.clone();
            tokio::spawn(async move { serve_connection(acceptor, tcp, remote, router).await });
        }
    });
    Ok(RunningServer {
        local_addr,
        shutdown,
        task,
    })
}

async fn serve_connection(
    acceptor: TlsAcceptor,
    tcp: tokio::net::TcpStream,
    remote: SocketAddr,
    router: Router,
) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            // A client certificate from another CA ends here, refused by rustls' verifier.
            tracing::warn!(%remote, "TLS handshake refused: {error}");
            return;
        }
        Err(_) => {
            tracing::warn!(%remote, "TLS handshake timed out after {HANDSHAKE_TIMEOUT:?}");
            return;
        }
    };
    let certificate = ClientCertificate(
        tls.get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| Arc::new(leaf.clone().into_owned())),
    );
    let service = service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(certificate.clone());
        let router = router.clone();
        async move {
            Ok::<_, Infallible>(
                router
                    .oneshot(request)
                    .await
                    .unwrap_or_else(|never| match never {}),
            )
        }
    });
    // A client that opens a connection and then sends its headers slowly, or never, is cut off.
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    if let Err(error) = http.serve_connection(TokioIo::new(tls), service).await {
        tracing::debug!(%remote, "connection ended with an error: {error}");
    }
}
