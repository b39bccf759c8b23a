-- silver.bureau: one row per credit-bureau snapshot.
-- * duplicates: keep the copy ingested last;
-- * impossible values become NULL: negative monthly income, age under 18;
-- * the late-payment sentinel codes 96 and 98 ("unknown" in the bureau's format) become NULL.
DROP TABLE IF EXISTS silver.bureau;
CREATE TABLE silver.bureau AS
SELECT DISTINCT ON (b.snapshot_id)
    b.snapshot_id,
    b.customer_id,
    b.pulled_at,
    b.revolving_utilization,
    b.debt_ratio,
    CASE WHEN b.monthly_income >= 0 THEN b.monthly_income END AS monthly_income,
    b.open_credit_lines,
    b.real_estate_loans,
    b.dependents,
    CASE WHEN b.late_30_59 IN (96, 98) THEN NULL ELSE b.late_30_59 END AS late_30_59,
    CASE WHEN b.late_60_89 IN (96, 98) THEN NULL ELSE b.late_60_89 END AS late_60_89,
    CASE WHEN b.late_90 IN (96, 98) THEN NULL ELSE b.late_90 END AS late_90,
    CASE WHEN b.age >= 18 THEN b.age END AS age,
    b.ingested_at,
    b._source_file
FROM bronze.bureau AS b
WHERE b.snapshot_id IS NOT NULL
ORDER BY b.snapshot_id, b.ingested_at DESC NULLS LAST, b._source_file DESC, b._source_line DESC;

ALTER TABLE silver.bureau ADD PRIMARY KEY (snapshot_id);
CREATE INDEX ON silver.bureau (customer_id, pulled_at);
ANALYZE silver.bureau;
