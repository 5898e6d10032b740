-- A rotated refresh token keeps its successor, sealed with a key derived from the
-- rotated token itself (which the database only knows hashed), for the grace period:
-- re-presenting it within the period gets that same successor back, so a replay can
-- never start a second line of tokens.
ALTER TABLE refresh_tokens ADD COLUMN successor_sealed bytea;

-- Failed-login throttling, shared by every auth replica (an attacker gets no more
-- attempts from N replicas than from one). Subjects are SHA-256 digests of an account
-- id or of an unknown login, so rows are fixed-size whatever a client sends.
-- Backoff per (subject, client address):
CREATE TABLE login_failures (
    subject  bytea       NOT NULL,
    client   text        NOT NULL,
    failures integer     NOT NULL,
    last_at  timestamptz NOT NULL,
    PRIMARY KEY (subject, client)
);
CREATE INDEX login_failures_last_idx ON login_failures (last_at);
-- Each subject's hourly budget of failures from all addresses (a token bucket).
CREATE TABLE login_budgets (
    subject     bytea            PRIMARY KEY,
    tokens      double precision NOT NULL,
    refilled_at timestamptz      NOT NULL
);
CREATE INDEX login_budgets_refilled_idx ON login_budgets (refilled_at);

-- Starts a login attempt and counts it as a failure at once (so concurrent guesses
-- cannot all pass before any is recorded; `login_succeeded` takes it back). Returns
-- the milliseconds to wait, 0 when the attempt may go ahead. Rows are locked budget
-- first, then pair, here and in `login_succeeded`, so the two never deadlock.
CREATE FUNCTION login_attempt(
    p_subject bytea, p_client text, p_now timestamptz,
    p_free_failures integer, p_base_ms bigint, p_max_ms bigint, p_per_hour integer
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    now_at   timestamptz := coalesce(p_now, clock_timestamp());
    v_budget   double precision;
    v_failures integer;
    v_last     timestamptz;
    v_delay_ms double precision;
    v_wait_ms  bigint;
BEGIN
    INSERT INTO login_budgets AS b (subject, tokens, refilled_at)
    VALUES (p_subject, p_per_hour, now_at)
    ON CONFLICT (subject) DO UPDATE
        SET tokens = least(p_per_hour::double precision, b.tokens
                + greatest(0, extract(epoch FROM now_at - b.refilled_at)) * p_per_hour / 3600.0),
            refilled_at = greatest(b.refilled_at, now_at)
    RETURNING b.tokens INTO v_budget;
    IF v_budget < 1 THEN
        RETURN ceil((1 - v_budget) * 3600000.0 / p_per_hour)::bigint;
    END IF;

    INSERT INTO login_failures AS f (subject, client, failures, last_at)
    VALUES (p_subject, p_client, 0, now_at)
    ON CONFLICT (subject, client) DO UPDATE
        -- Failures are remembered for twice the longest wait: waiting out the cap
        -- does not give the free attempts back (the next failure waits the cap again).
        SET failures = CASE WHEN now_at - f.last_at > 2 * p_max_ms * interval '1 millisecond'
                            THEN 0 ELSE f.failures END
    RETURNING f.failures, f.last_at INTO v_failures, v_last;
    IF v_failures < p_free_failures THEN
        v_delay_ms := 0;
    ELSE
        v_delay_ms := least(p_base_ms * power(2, least(v_failures - p_free_failures, 16)), p_max_ms);
    END IF;
    v_wait_ms := ceil(extract(epoch FROM v_last + v_delay_ms * interval '1 millisecond' - now_at) * 1000)::bigint;
    IF v_wait_ms > 0 THEN
        RETURN v_wait_ms;
    END IF;
    UPDATE login_failures AS f SET failures = f.failures + 1, last_at = now_at
    WHERE f.subject = p_subject AND f.client = p_client;
    UPDATE login_budgets AS b SET tokens = b.tokens - 1 WHERE b.subject = p_subject;
    RETURN 0;
END $$;

-- The attempt succeeded: forget the client's failures on the subject and give back
-- the budget the attempt took.
CREATE FUNCTION login_succeeded(p_subject bytea, p_client text, p_per_hour integer)
RETURNS void LANGUAGE sql AS $$
    UPDATE login_budgets SET tokens = least(p_per_hour::double precision, tokens + 1)
    WHERE subject = p_subject;
    UPDATE login_failures SET failures = 0 WHERE subject = p_subject AND client = p_client;
$$;
