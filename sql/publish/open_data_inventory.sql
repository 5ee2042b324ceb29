-- Public data set `open-data-inventory`: the city's inventory of data sets and their release
-- status, as recorded by the last publication (ops.dataset_inventory). Restricted and sensitive
-- data sets are counted in the program but not listed.
SELECT dataset_id, title, department, steward, release_status, release_priority, accrual_periodicity
FROM ops.dataset_inventory
WHERE sensitivity = 'public'
ORDER BY release_priority, dataset_id
