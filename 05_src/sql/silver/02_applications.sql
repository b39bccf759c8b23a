-- silver.applications: one row per application, typed and cleaned.
-- * duplicates: keep the copy ingested last (a near duplicate's stale copy landed earlier);
-- * categories: lower(trim()) and the spelling map; NULL becomes 'unknown';
-- * impossible values: an amount <= 0 becomes NULL (the application itself is real);
-- * month: from applied_at, not from the file it landed in (late rows keep their own month).
DROP TABLE IF EXISTS silver.applications;
CREATE TABLE silver.applications AS
SELECT DISTINCT ON (a.application_id)
    a.application_id,
    a.customer_id,
    a.applied_at,
    to_char(a.applied_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month,
    coalesce(ch.canonical, lower(btrim(a.channel)), 'unknown') AS channel,
    coalesce(pu.canonical, lower(btrim(a.purpose)), 'unknown') AS purpose,
    CASE WHEN a.amount > 0 THEN a.amount END AS amount,
    a.term_months,
    coalesce(re.canonical, lower(btrim(a.region)), 'unknown') AS region,
    a.ingested_at,
    a._source_file
FROM bronze.applications AS a
LEFT JOIN silver.category_map AS ch ON ch.column_name = 'channel' AND ch.raw_value = lower(btrim(a.channel))
LEFT JOIN silver.category_map AS pu ON pu.column_name = 'purpose' AND pu.raw_value = lower(btrim(a.purpose))
LEFT JOIN silver.category_map AS re ON re.column_name = 'region' AND re.raw_value = lower(btrim(a.region))
WHERE a.application_id IS NOT NULL
ORDER BY a.application_id, a.ingested_at DESC NULLS LAST, a._source_file DESC, a._source_line DESC;

ALTER TABLE silver.applications ADD PRIMARY KEY (application_id);
CREATE INDEX ON silver.applications (customer_id, applied_at);
CREATE INDEX ON silver.applications (month);
ANALYZE silver.applications;
