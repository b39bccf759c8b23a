-- silver.customers: one row per customer, the latest version that landed.
-- Exact duplicates collapse and the stale copy of a near duplicate loses to the copy
-- ingested last; region spellings map to canonical values (silver.category_map), and a
-- missing region becomes 'unknown'.
DROP TABLE IF EXISTS silver.customers;
CREATE TABLE silver.customers AS
SELECT DISTINCT ON (c.customer_id)
    c.customer_id,
    c.signup_at,
    c.birth_date,
    coalesce(r.canonical, lower(btrim(c.region)), 'unknown') AS region,
    c.ingested_at,
    c._source_file
FROM bronze.customers AS c
LEFT JOIN silver.category_map AS r ON r.column_name = 'region' AND r.raw_value = lower(btrim(c.region))
WHERE c.customer_id IS NOT NULL
ORDER BY c.customer_id, c.ingested_at DESC NULLS LAST, c._source_file DESC, c._source_line DESC;

ALTER TABLE silver.customers ADD PRIMARY KEY (customer_id);
ANALYZE silver.customers;
