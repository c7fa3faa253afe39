-- Version 7: webhooks — endpoints with their secrets, and the delivery
-- queue, written in the transaction of the change that caused each delivery.

CREATE TABLE licet.webhook_endpoints (
    endpoint_id text PRIMARY KEY,
    created_at timestamptz NOT NULL,
    doc jsonb NOT NULL,
    CHECK (doc ->> 'endpoint_id' = endpoint_id)
);

-- One row per endpoint, locked (FOR UPDATE SKIP LOCKED) by the one deliverer
-- sending for it, so that pausing or rotating an endpoint never waits for a receiver.
CREATE TABLE licet.webhook_senders (
    endpoint_id text PRIMARY KEY REFERENCES licet.webhook_endpoints ON DELETE CASCADE
);

-- Deliveries in each endpoint's order (seq); no foreign key to the endpoint: a
-- change racing the endpoint's removal may still queue one, which is never sent.
CREATE TABLE licet.webhook_deliveries (
    seq bigserial PRIMARY KEY,
    delivery_id text NOT NULL UNIQUE,
    endpoint_id text NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    doc jsonb NOT NULL
);
CREATE INDEX webhook_deliveries_queue ON licet.webhook_deliveries (endpoint_id, status, seq);
