//! The client API of a cluster: orders, market data, key-value, events.

use std::time::Duration;

use matchengine_proto::v1 as pb;
use matchengine_proto::v1::client_client::ClientClient;

use crate::error::ClientError;
use crate::events::EventSubscription;
use crate::pool::{ConnectOptions, Pool, RetryPolicy, request};
use crate::transport::Transport;

/// Largest response the client accepts.
const RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// A handle to a cluster's client API; clones share connections.
#[derive(Clone, Debug)]
pub struct Client {
    pool: Pool,
}

fn api(channel: Transport) -> ClientClient<Transport> {
    ClientClient::new(channel).max_decoding_message_size(RESPONSE_BYTES_MAX)
}

/// Whether a read must reflect every acknowledged write (leader, read
/// index) or may be served by any node from what it has applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Consistency {
    #[default]
    Linearizable,
    Stale,
}

impl Consistency {
    fn to_pb(self) -> i32 {
        match self {
            Consistency::Linearizable => pb::ReadConsistency::Linearizable as i32,
            Consistency::Stale => pb::ReadConsistency::Stale as i32,
        }
    }
}

impl Client {
    /// A client of the nodes at `addrs` (their client API `host:port`).
    pub fn new(addrs: Vec<String>) -> Result<Client, ClientError> {
        Client::with_policy(addrs, RetryPolicy::default())
    }

    pub fn with_policy(addrs: Vec<String>, policy: RetryPolicy) -> Result<Client, ClientError> {
        Client::connect(addrs, policy.into())
    }

    /// A client with TLS and/or a token (see [`ConnectOptions`]).
    pub fn connect(addrs: Vec<String>, options: ConnectOptions) -> Result<Client, ClientError> {
        Ok(Client {
            pool: Pool::new(addrs, options)?,
        })
    }

    /// Reads go to the leader when linearizable, to any node when stale.
    async fn read<T, F, Fut>(&self, consistency: Consistency, call: F) -> Result<T, ClientError>
    where
        F: Fn(Transport, Duration) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        match consistency {
            Consistency::Linearizable => {
                self.pool.leader_call(crate::pool::Repeat::Safe, call).await
            }
            Consistency::Stale => self.pool.any_call(call).await,
        }
    }

    pub async fn place_order(
        &self,
        order: pb::PlaceOrder,
    ) -> Result<pb::PlaceOrderResponse, ClientError> {
        // Idempotent by (account, client order id): safe to repeat.
        leader_rpc!(self, api, place_order, order, crate::pool::Repeat::Safe)
    }

    pub async fn cancel_order(
        &self,
        cancel: pb::CancelOrder,
    ) -> Result<pb::CancelOrderResponse, ClientError> {
        leader_rpc!(self, api, cancel_order, cancel)
    }

    pub async fn replace_order(
        &self,
        replace: pb::ReplaceOrder,
    ) -> Result<pb::ReplaceOrderResponse, ClientError> {
        leader_rpc!(self, api, replace_order, replace)
    }

    pub async fn mass_cancel(
        &self,
        mass: pb::MassCancel,
    ) -> Result<pb::MassCancelResponse, ClientError> {
        leader_rpc!(self, api, mass_cancel, mass)
    }

    pub async fn submit_batch(
        &self,
        commands: Vec<pb::Command>,
    ) -> Result<pb::SubmitBatchResponse, ClientError> {
        leader_rpc!(self, api, submit_batch, pb::SubmitBatchRequest { commands })
    }

    pub async fn get_order(
        &self,
        account: u64,
        order: pb::order_ref::By,
        consistency: Consistency,
    ) -> Result<pb::OrderInfo, ClientError> {
        let message = pb::GetOrderRequest {
            account,
            order: Some(pb::OrderRef { by: Some(order) }),
            consistency: consistency.to_pb(),
        };
        self.read(consistency, |channel, timeout| async move {
            api(channel).get_order(request(message, timeout)).await
        })
        .await
    }

    pub async fn top_of_book(
        &self,
        instrument: u32,
        consistency: Consistency,
    ) -> Result<pb::TopOfBook, ClientError> {
        let message = pb::GetTopOfBookRequest {
            instrument,
            consistency: consistency.to_pb(),
        };
        self.read(consistency, |channel, timeout| async move {
            api(channel)
                .get_top_of_book(request(message, timeout))
                .await
        })
        .await
    }

    pub async fn depth(
        &self,
        instrument: u32,
        levels: u32,
        consistency: Consistency,
    ) -> Result<pb::Depth, ClientError> {
        let message = pb::GetDepthRequest {
            instrument,
            levels,
            consistency: consistency.to_pb(),
        };
        self.read(consistency, |channel, timeout| async move {
            api(channel).get_depth(request(message, timeout)).await
        })
        .await
    }

    pub async fn instruments(
        &self,
        consistency: Consistency,
    ) -> Result<Vec<pb::InstrumentSpec>, ClientError> {
        let message = pb::ListInstrumentsRequest {
            consistency: consistency.to_pb(),
        };
        let response = self
            .read(consistency, |channel, timeout| async move {
                api(channel)
                    .list_instruments(request(message, timeout))
                    .await
            })
            .await?;
        Ok(response.instruments)
    }

    /// Sets `key`; returns whether it held a value before.
    pub async fn kv_put(&self, key: Vec<u8>, value: Vec<u8>) -> Result<bool, ClientError> {
        let response = leader_rpc!(self, api, kv_put, pb::KvPutRequest { key, value })?;
        Ok(response.existed)
    }

    /// The value of `key`; `None` when there is none.
    pub async fn kv_get(
        &self,
        key: Vec<u8>,
        consistency: Consistency,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        let message = pb::KvGetRequest {
            key,
            consistency: consistency.to_pb(),
        };
        let result = self
            .read(consistency, |channel, timeout| {
                let message = message.clone();
                async move { api(channel).kv_get(request(message, timeout)).await }
            })
            .await;
        match result {
            Ok(response) => Ok(Some(response.value)),
            Err(error) if error.code() == Some(tonic::Code::NotFound) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Deletes `key`; `false` when there was nothing to delete.
    pub async fn kv_delete(&self, key: Vec<u8>) -> Result<bool, ClientError> {
        match leader_rpc!(self, api, kv_delete, pb::KvDeleteRequest { key }) {
            Ok(_) => Ok(true),
            Err(error) if error.code() == Some(tonic::Code::NotFound) => Ok(false),
            Err(error) => Err(error),
        }
    }

    pub async fn kv_range(
        &self,
        prefix: Vec<u8>,
        start_after: Vec<u8>,
        limit: u32,
        consistency: Consistency,
    ) -> Result<pb::KvRangeResponse, ClientError> {
        let message = pb::KvRangeRequest {
            prefix,
            start_after,
            limit,
            consistency: consistency.to_pb(),
        };
        self.read(consistency, |channel, timeout| {
            let message = message.clone();
            async move { api(channel).kv_range(request(message, timeout)).await }
        })
        .await
    }

    /// The events of `instrument` from `from_sequence` on, resuming on
    /// another node after a disconnect without a gap or a repeat.
    pub fn events(&self, instrument: u32, from_sequence: u64) -> EventSubscription {
        EventSubscription::new(self.pool.clone(), instrument, from_sequence)
    }

    /// The raw generated client for one node (tests and tools).
    pub fn node(&self, addr: &str) -> Result<ClientClient<Transport>, ClientError> {
        Ok(api(self.pool.channel(addr)?))
    }
}
