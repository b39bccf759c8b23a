-- gold.application_features: one row per application with the features known at the
-- moment it was made (point in time) and its label when one has been observed.
--
-- Point in time: the bureau snapshot is the latest pulled at or before applied_at; the
-- history counts use only applications made, and repayments ingested, before applied_at.
-- A snapshot pulled after the application reflects what happened next: using it would
-- leak the label. %(as_of)s is the moment the data set is observed; labels observed
-- later do not exist yet.

-- Repayment history per customer, indexed by arrival time, so each application looks
-- up "what had arrived before me" with one index probe.
DROP TABLE IF EXISTS pg_temp.repayment_history;
CREATE TEMP TABLE repayment_history ON COMMIT DROP AS
SELECT app.customer_id, r.ingested_at, r.days_late
FROM silver.repayments AS r
JOIN silver.applications AS app ON app.application_id = r.application_id;
CREATE INDEX ON repayment_history (customer_id, ingested_at);
ANALYZE repayment_history;

DROP TABLE IF EXISTS gold.application_features;
CREATE TABLE gold.application_features AS
SELECT
    a.application_id,
    a.customer_id,
    a.applied_at,
    a.month,
    a.channel,
    a.purpose,
    a.amount,
    a.term_months,
    a.region,
    b.snapshot_id,
    b.pulled_at AS bureau_pulled_at,
    b.age,
    b.revolving_utilization,
    b.debt_ratio,
    b.monthly_income,
    b.open_credit_lines,
    b.real_estate_loans,
    b.dependents,
    b.late_30_59,
    b.late_60_89,
    b.late_90,
    h.prior_applications,
    p.prior_repayments,
    p.prior_late_payments,
    o.serious_dlq,
    o.observed_at AS label_observed_at
FROM silver.applications AS a
LEFT JOIN LATERAL (
    SELECT s.*
    FROM silver.bureau AS s
    WHERE s.customer_id = a.customer_id AND s.pulled_at <= a.applied_at
    ORDER BY s.pulled_at DESC, s.snapshot_id DESC
    LIMIT 1
) AS b ON true
LEFT JOIN LATERAL (
    SELECT count(*)::integer AS prior_applications
    FROM silver.applications AS earlier
    WHERE earlier.customer_id = a.customer_id AND earlier.applied_at < a.applied_at
) AS h ON true
LEFT JOIN LATERAL (
    SELECT
        count(*)::integer AS prior_repayments,
        (count(*) FILTER (WHERE r.days_late > 30))::integer AS prior_late_payments
    FROM repayment_history AS r
    WHERE r.customer_id = a.customer_id AND r.ingested_at < a.applied_at
) AS p ON true
LEFT JOIN silver.outcomes AS o
    ON o.application_id = a.application_id AND o.observed_at < %(as_of)s;

ALTER TABLE gold.application_features ADD PRIMARY KEY (application_id);
CREATE INDEX ON gold.application_features (month);
CREATE INDEX ON gold.application_features (customer_id, applied_at);
