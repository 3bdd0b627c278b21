//! [`TonicAdmin`]: the admin calls over gRPC, plaintext or TLS as its
//! [`AdminAuth`] says, on the client library's transport: its endpoints,
//! TLS options, bearer credentials and channel cache (keyed by address and
//! TLS identity, so that reconciles reuse connections).

use matchengine_client::transport::plain_endpoint;
pub use matchengine_client::transport::{ChannelCache, ChannelKey};
use matchengine_proto::v1::admin_client::AdminClient;
use matchengine_proto::v1::{
    AddLearnerRequest, ChangeMembershipRequest, InitializeRequest, InstrumentSpec, StatusRequest,
    TransferLeadershipRequest,
};
use tonic::transport::Channel;

use super::{AddressBook, AdminApi, AdminAuth, AdminError, AdminTimeouts, node_status};
use crate::plan::NodeStatus;

/// The real admin client.
pub struct TonicAdmin<B> {
    addresses: B,
    timeouts: AdminTimeouts,
    channels: ChannelCache,
    auth: AdminAuth,
}

impl<B> std::fmt::Debug for TonicAdmin<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TonicAdmin")
            .field("timeouts", &self.timeouts)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl<B: AddressBook> TonicAdmin<B> {
    /// Plaintext, without a token, on channels of its own.
    pub fn new(addresses: B, timeouts: AdminTimeouts) -> Self {
        Self::with_channels(addresses, timeouts, ChannelCache::default())
    }

    pub fn with_channels(addresses: B, timeouts: AdminTimeouts, channels: ChannelCache) -> Self {
        Self {
            addresses,
            timeouts,
            channels,
            auth: AdminAuth::default(),
        }
    }

    /// TLS (https, with the client identity) and the bearer token, as
    /// `auth` has them.
    pub fn with_auth(mut self, auth: AdminAuth) -> Self {
        self.auth = auth;
        self
    }

    fn client(&self, node_id: u64) -> Result<AdminClient<Channel>, AdminError> {
        let addr = self.addresses.record(node_id).admin_addr;
        let tls = self.auth.tls();
        let channel = self.channels.get_or_connect(&addr, tls, || {
            let mut endpoint = plain_endpoint(&addr, tls.is_some(), self.timeouts.connect)
                .map_err(|source| AdminError::Address {
                    node_id,
                    addr: addr.clone(),
                    source,
                })?
                .timeout(self.timeouts.request);
            if let Some(tls) = tls {
                endpoint = endpoint
                    .tls_config(tls.config())
                    .map_err(|source| AdminError::Tls {
                        node_id,
                        addr: addr.clone(),
                        source,
                    })?;
            }
            Ok(endpoint.connect_lazy())
        })?;
        Ok(AdminClient::new(channel))
    }
}

impl<B: AddressBook> AdminApi for TonicAdmin<B> {
    async fn status(&self, node_id: u64) -> Result<NodeStatus, AdminError> {
        let response = self
            .client(node_id)?
            .status(self.auth.request(StatusRequest {}))
            .await
            .map_err(|s| AdminError::from_status(node_id, &s))?;
        Ok(node_status(node_id, response.into_inner()))
    }

    async fn initialize(&self, node_id: u64) -> Result<(), AdminError> {
        self.client(node_id)?
            .initialize(self.auth.request(InitializeRequest { members: vec![] }))
            .await
            .map_err(|s| AdminError::from_status(node_id, &s))?;
        Ok(())
    }

    async fn add_learner(&self, leader_id: u64, node_id: u64) -> Result<(), AdminError> {
        let request = AddLearnerRequest {
            node: Some(self.addresses.record(node_id)),
            // The planner polls the lag and promotes; a blocking call would
            // hold the reconciler for as long as the catch-up takes.
            wait_caught_up: false,
        };
        self.client(leader_id)?
            .add_learner(self.auth.request(request))
            .await
            .map_err(|s| AdminError::from_status(leader_id, &s))?;
        Ok(())
    }

    async fn change_membership(
        &self,
        leader_id: u64,
        promote: Vec<u64>,
        remove: Vec<u64>,
    ) -> Result<(), AdminError> {
        self.client(leader_id)?
            .change_membership(
                self.auth
                    .request(ChangeMembershipRequest { promote, remove }),
            )
            .await
            .map_err(|s| AdminError::from_status(leader_id, &s))?;
        Ok(())
    }

    async fn transfer_leadership(&self, leader_id: u64, to_node_id: u64) -> Result<(), AdminError> {
        let wait_ms = u32::try_from(self.timeouts.transfer_wait.as_millis()).unwrap_or(u32::MAX);
        self.client(leader_id)?
            .transfer_leadership(self.auth.request(TransferLeadershipRequest {
                to_node_id,
                wait_ms,
            }))
            .await
            .map_err(|s| AdminError::from_status(leader_id, &s))?;
        Ok(())
    }

    async fn add_instrument(&self, leader_id: u64, spec: InstrumentSpec) -> Result<(), AdminError> {
        match self
            .client(leader_id)?
            .add_instrument(self.auth.request(spec))
            .await
        {
            Ok(_) => Ok(()),
            Err(status) if status.code() == tonic::Code::AlreadyExists => Ok(()),
            Err(status) => Err(AdminError::from_status(leader_id, &status)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{ClientTls, client_tls_from_pem};
    use matchengine_proto::v1::NodeRecord;

    fn at(addr: String) -> impl Fn(u64) -> NodeRecord + Send + Sync {
        move |id| NodeRecord {
            node_id: id,
            admin_addr: addr.clone(),
            ..NodeRecord::default()
        }
    }

    #[tokio::test]
    async fn unreachable_node_is_an_error_not_a_hang() {
        // A port that was just free: the connect is refused at once and
        // the call reports it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let admin = TonicAdmin::new(at(format!("127.0.0.1:{port}")), AdminTimeouts::default());
        let error = admin.status(1).await.unwrap_err();
        assert!(matches!(error, AdminError::Unavailable { .. }), "{error:?}");
    }

    /// A throwaway CA and two leaves, made once per test process (no keys
    /// in the repository): `node` (localhost and 127.0.0.1, server and
    /// client auth) and `operator` (client auth).
    fn testdata(name: &str) -> Vec<u8> {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
            IsCa, KeyPair, KeyUsagePurpose,
        };
        static PKI: std::sync::OnceLock<std::collections::HashMap<&'static str, Vec<u8>>> =
            std::sync::OnceLock::new();
        let pki = PKI.get_or_init(|| {
            let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
            ca.distinguished_name
                .push(DnType::CommonName, "matchengine test CA");
            ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
            let leaf = |sans: Vec<String>, usages: Vec<ExtendedKeyUsagePurpose>| {
                let mut params = CertificateParams::new(sans).unwrap();
                params.extended_key_usages = usages;
                let key = KeyPair::generate().unwrap();
                let cert = params.signed_by(&key, &ca).unwrap();
                (cert.pem().into_bytes(), key.serialize_pem().into_bytes())
            };
            let (node_crt, node_key) = leaf(
                vec!["localhost".into(), "127.0.0.1".into()],
                vec![
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::ClientAuth,
                ],
            );
            let (operator_crt, operator_key) =
                leaf(vec![], vec![ExtendedKeyUsagePurpose::ClientAuth]);
            std::collections::HashMap::from([
                ("ca.crt", ca.pem().into_bytes()),
                ("node.crt", node_crt),
                ("node.key", node_key),
                ("operator.crt", operator_crt),
                ("operator.key", operator_key),
            ])
        });
        pki.get(name)
            .cloned()
            .unwrap_or_else(|| panic!("no test file {name}"))
    }

    fn operator_identity() -> ClientTls {
        client_tls_from_pem(
            testdata("ca.crt"),
            testdata("operator.crt"),
            testdata("operator.key"),
        )
    }

    #[tokio::test]
    async fn tls_and_plaintext_channels_to_one_address_do_not_mix() {
        let channels = ChannelCache::default();
        let addr = "books-0.books-headless.trading.svc.cluster.local:7002".to_owned();
        let plain =
            TonicAdmin::with_channels(at(addr.clone()), AdminTimeouts::default(), channels.clone());
        let tls =
            TonicAdmin::with_channels(at(addr.clone()), AdminTimeouts::default(), channels.clone())
                .with_auth(AdminAuth::default().with_tls(operator_identity()));
        let keys = |c: &ChannelCache| c.keys();
        plain.client(1).unwrap();
        assert_eq!(
            keys(&channels),
            [ChannelKey {
                addr: addr.clone(),
                tls_digest: None
            }]
        );
        tls.client(1).unwrap();
        let digest = operator_identity().digest();
        assert_eq!(
            keys(&channels),
            [ChannelKey {
                addr: addr.clone(),
                tls_digest: Some(digest)
            }],
            "the plaintext channel is not reused for TLS, and is dropped"
        );
        // A rotated identity gets a channel of its own.
        let rotated = client_tls_from_pem(
            testdata("ca.crt"),
            testdata("node.crt"),
            testdata("node.key"),
        );
        let tls =
            TonicAdmin::with_channels(at(addr.clone()), AdminTimeouts::default(), channels.clone())
                .with_auth(AdminAuth::default().with_tls(rotated.clone()));
        tls.client(1).unwrap();
        assert_eq!(
            keys(&channels),
            [ChannelKey {
                addr,
                tls_digest: Some(rotated.digest())
            }]
        );
    }

    /// A node's admin port as the node serves it with TLS on: mutual TLS
    /// against the cluster's CA. Answers Status with the authorization
    /// header it saw in the node record's client address.
    mod node {
        use matchengine_proto::v1::admin_server::{Admin, AdminServer};
        use matchengine_proto::v1::*;
        use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
        use tonic::{Request, Response, Status};

        struct Stub;

        #[tonic::async_trait]
        impl Admin for Stub {
            async fn initialize(
                &self,
                _: Request<InitializeRequest>,
            ) -> Result<Response<InitializeResponse>, Status> {
                Err(Status::unimplemented(""))
            }
            async fn add_learner(
                &self,
                _: Request<AddLearnerRequest>,
            ) -> Result<Response<MembershipResponse>, Status> {
                Err(Status::unimplemented(""))
            }
            async fn change_membership(
                &self,
                _: Request<ChangeMembershipRequest>,
            ) -> Result<Response<MembershipResponse>, Status> {
                Err(Status::unimplemented(""))
            }
            async fn transfer_leadership(
                &self,
                _: Request<TransferLeadershipRequest>,
            ) -> Result<Response<TransferLeadershipResponse>, Status> {
                Err(Status::unimplemented(""))
            }
            async fn trigger_snapshot(
                &self,
                _: Request<TriggerSnapshotRequest>,
            ) -> Result<Response<TriggerSnapshotResponse>, Status> {
                Err(Status::unimplemented(""))
            }
            async fn add_instrument(
                &self,
                _: Request<InstrumentSpec>,
            ) -> Result<Response<AddInstrumentResponse>, Status> {
                Err(Status::unimplemented(""))
            }
            async fn status(
                &self,
                request: Request<StatusRequest>,
            ) -> Result<Response<StatusResponse>, Status> {
                let seen = request
                    .metadata()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                Ok(Response::new(StatusResponse {
                    node: Some(NodeRecord {
                        node_id: 1,
                        client_addr: seen,
                        ..NodeRecord::default()
                    }),
                    ..StatusResponse::default()
                }))
            }
        }

        /// Serves on a free loopback port until the test ends; returns it.
        pub(super) async fn serve() -> u16 {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let incoming = futures::stream::unfold(listener, |listener| async move {
                let accepted = listener.accept().await.map(|(stream, _)| stream);
                Some((accepted, listener))
            });
            let tls = ServerTlsConfig::new()
                .identity(Identity::from_pem(
                    super::testdata("node.crt"),
                    super::testdata("node.key"),
                ))
                .client_ca_root(Certificate::from_pem(super::testdata("ca.crt")));
            let server = Server::builder()
                .tls_config(tls)
                .unwrap()
                .add_service(AdminServer::new(Stub))
                .serve_with_incoming(incoming);
            tokio::spawn(server);
            port
        }
    }

    #[tokio::test]
    async fn tls_with_the_operators_identity_and_token_reaches_a_mutual_tls_node() {
        let port = node::serve().await;
        let addr = format!("localhost:{port}");
        let auth = AdminAuth::default()
            .with_tls(operator_identity())
            .with_bearer("s3cret")
            .unwrap();
        let admin = TonicAdmin::new(at(addr.clone()), AdminTimeouts::default()).with_auth(auth);
        // The stub echoes the authorization header in the status' record;
        // node_status keeps only what the planner needs, so ask raw.
        let mut client = admin.client(1).unwrap();
        let answer = client
            .status(admin.auth.request(StatusRequest {}))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.node.unwrap().client_addr, "Bearer s3cret");
        assert!(admin.status(1).await.is_ok());
        // Plaintext to a TLS port fails.
        let plain = TonicAdmin::new(at(addr.clone()), AdminTimeouts::default());
        assert!(plain.status(1).await.is_err());
        let no_identity = TonicAdmin::new(at(addr), AdminTimeouts::default()).with_auth(
            AdminAuth::default().with_tls(client_tls_from_pem(
                testdata("ca.crt"),
                Vec::new(),
                Vec::new(),
            )),
        );
        // An unusable identity is an error when the client is built.
        assert!(matches!(
            no_identity.status(1).await,
            Err(AdminError::Tls { .. })
        ));
    }
}
