-- Data-quality defects in bronze, counted the way silver resolves them.
-- One row per (table_name, defect, rows). "kept" is the version of each entity that silver
-- keeps (the copy ingested last); defects other than duplicates are counted on it, so the
-- stale copy of a near duplicate is counted once, as a near duplicate.
WITH
app_kept AS (
    SELECT DISTINCT ON (application_id) * FROM bronze.applications
    ORDER BY application_id, ingested_at DESC, _source_file DESC, _source_line DESC),
cust_kept AS (
    SELECT DISTINCT ON (customer_id) * FROM bronze.customers
    ORDER BY customer_id, ingested_at DESC, _source_file DESC, _source_line DESC),
bureau_kept AS (
    SELECT DISTINCT ON (snapshot_id) * FROM bronze.bureau
    ORDER BY snapshot_id, ingested_at DESC, _source_file DESC, _source_line DESC),
repay_kept AS (
    SELECT DISTINCT ON (application_id, due_date) * FROM bronze.repayments
    ORDER BY application_id, due_date, ingested_at DESC, _source_file DESC, _source_line DESC),
counts AS (
    -- exact duplicates: rows minus distinct rows (lineage columns left out)
    SELECT 'customers' AS table_name, 'exact_duplicates' AS defect,
           count(*) - (SELECT count(*) FROM (SELECT DISTINCT customer_id, signup_at, birth_date, region, ingested_at
                                             FROM bronze.customers) d) AS n
    FROM bronze.customers
    UNION ALL
    SELECT 'applications', 'exact_duplicates',
           count(*) - (SELECT count(*) FROM (SELECT DISTINCT application_id, customer_id, applied_at, channel, purpose,
                                                    amount, term_months, region, ingested_at
                                             FROM bronze.applications) d)
    FROM bronze.applications
    UNION ALL
    SELECT 'bureau', 'exact_duplicates',
           count(*) - (SELECT count(*) FROM (SELECT DISTINCT snapshot_id, customer_id, pulled_at, revolving_utilization,
                                                    debt_ratio, monthly_income, open_credit_lines, real_estate_loans,
                                                    dependents, late_30_59, late_60_89, late_90, age, ingested_at
                                             FROM bronze.bureau) d)
    FROM bronze.bureau
    UNION ALL
    SELECT 'repayments', 'exact_duplicates',
           count(*) - (SELECT count(*) FROM (SELECT DISTINCT application_id, due_date, amount_due, amount_paid, days_late,
                                                    ingested_at
                                             FROM bronze.repayments) d)
    FROM bronze.repayments
    UNION ALL
    SELECT 'outcomes', 'exact_duplicates',
           count(*) - (SELECT count(*) FROM (SELECT DISTINCT application_id, observed_at, serious_dlq, ingested_at
                                             FROM bronze.outcomes) d)
    FROM bronze.outcomes
    -- near duplicates: distinct rows minus distinct keys
    UNION ALL
    SELECT 'customers', 'near_duplicates',
           (SELECT count(*) FROM (SELECT DISTINCT customer_id, signup_at, birth_date, region, ingested_at
                                  FROM bronze.customers) d) - count(DISTINCT customer_id)
    FROM bronze.customers
    UNION ALL
    SELECT 'applications', 'near_duplicates',
           (SELECT count(*) FROM (SELECT DISTINCT application_id, customer_id, applied_at, channel, purpose, amount,
                                         term_months, region, ingested_at
                                  FROM bronze.applications) d) - count(DISTINCT application_id)
    FROM bronze.applications
    UNION ALL
    SELECT 'bureau', 'near_duplicates',
           (SELECT count(*) FROM (SELECT DISTINCT snapshot_id, customer_id, pulled_at, revolving_utilization, debt_ratio,
                                         monthly_income, open_credit_lines, real_estate_loans, dependents, late_30_59,
                                         late_60_89, late_90, age, ingested_at
                                  FROM bronze.bureau) d) - count(DISTINCT snapshot_id)
    FROM bronze.bureau
    UNION ALL
    SELECT 'repayments', 'near_duplicates',
           (SELECT count(*) FROM (SELECT DISTINCT application_id, due_date, amount_due, amount_paid, days_late, ingested_at
                                  FROM bronze.repayments) d)
           - (SELECT count(*) FROM (SELECT DISTINCT application_id, due_date FROM bronze.repayments) k)
    UNION ALL
    SELECT 'outcomes', 'near_duplicates',
           (SELECT count(*) FROM (SELECT DISTINCT application_id, observed_at, serious_dlq, ingested_at
                                  FROM bronze.outcomes) d) - count(DISTINCT application_id)
    FROM bronze.outcomes
    -- late-arriving rows: landed in a file of a later month than their own
    UNION ALL
    SELECT 'customers', 'late_arriving', count(*) FROM bronze.customers
    WHERE month > to_char(signup_at AT TIME ZONE 'UTC', 'YYYY-MM')
    UNION ALL
    SELECT 'applications', 'late_arriving', count(*) FROM bronze.applications
    WHERE month > to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM')
    UNION ALL
    SELECT 'bureau', 'late_arriving', count(*) FROM bronze.bureau
    WHERE month > to_char(pulled_at AT TIME ZONE 'UTC', 'YYYY-MM')
    UNION ALL
    SELECT 'repayments', 'late_arriving', count(*) FROM bronze.repayments
    WHERE month > to_char(due_date, 'YYYY-MM')
    UNION ALL
    SELECT 'outcomes', 'late_arriving', count(*) FROM bronze.outcomes
    WHERE month > to_char(observed_at AT TIME ZONE 'UTC', 'YYYY-MM')
    -- inconsistent category spellings: the raw value is not already canonical
    UNION ALL
    SELECT 'customers', 'category_spellings', count(*) FROM cust_kept
    WHERE region IS NOT NULL AND region NOT IN (SELECT canonical FROM silver.category_map WHERE column_name = 'region')
    UNION ALL
    SELECT 'applications', 'category_spellings', count(*) FROM app_kept
    WHERE (channel IS NOT NULL AND channel NOT IN (SELECT canonical FROM silver.category_map WHERE column_name = 'channel'))
       OR (purpose IS NOT NULL AND purpose NOT IN (SELECT canonical FROM silver.category_map WHERE column_name = 'purpose'))
       OR (region IS NOT NULL AND region NOT IN (SELECT canonical FROM silver.category_map WHERE column_name = 'region'))
    -- impossible values (set to NULL in silver)
    UNION ALL
    SELECT 'applications', 'impossible_values', count(*) FROM app_kept WHERE amount <= 0
    UNION ALL
    SELECT 'bureau', 'impossible_values', count(*) FROM bureau_kept WHERE monthly_income < 0 OR age < 18
    -- extra NULLs in columns that are never NULL in clean data
    UNION ALL
    SELECT 'customers', 'extra_nulls', count(*) FROM cust_kept WHERE birth_date IS NULL OR region IS NULL
    UNION ALL
    SELECT 'applications', 'extra_nulls', count(*) FROM app_kept
    WHERE channel IS NULL OR purpose IS NULL OR term_months IS NULL OR region IS NULL
    UNION ALL
    SELECT 'bureau', 'extra_nulls', count(*) FROM bureau_kept
    WHERE revolving_utilization IS NULL OR debt_ratio IS NULL OR open_credit_lines IS NULL OR real_estate_loans IS NULL
    UNION ALL
    SELECT 'repayments', 'extra_nulls', count(*) FROM repay_kept WHERE amount_paid IS NULL OR days_late IS NULL
    -- sentinel codes 96 / 98 in late-payment counts (NULL in silver)
    UNION ALL
    SELECT 'bureau', 'sentinel_codes', count(*) FROM bureau_kept
    WHERE late_30_59 IN (96, 98) OR late_60_89 IN (96, 98) OR late_90 IN (96, 98)
)
SELECT table_name, defect, n::bigint AS rows FROM counts ORDER BY table_name, defect;
