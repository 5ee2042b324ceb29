-- Public data set `mpd-crime-incidents`: the city's WIBR columns, in the city's published names,
-- so existing users of the WIBR extract keep their column names. One row per incident, in a
-- stable order so that an unchanged warehouse exports byte-identical files.
SELECT
    incident_num                       AS "IncidentNum",
    to_char(reported_at, 'YYYY-MM-DD HH24:MI:SS') AS "ReportedDateTime",
    extract(year FROM reported_at)::int  AS "ReportedYear",
    extract(month FROM reported_at)::int AS "ReportedMonth",
    location                           AS "Location",
    weapon_used                        AS "WeaponUsed",
    ald                                AS "ALD",
    nsp                                AS "NSP",
    police                             AS "POLICE",
    tract                              AS "TRACT",
    ward                               AS "WARD",
    zip                                AS "ZIP",
    rough_x                            AS "RoughX",
    rough_y                            AS "RoughY",
    arson::int                         AS "Arson",
    assault_offense::int               AS "AssaultOffense",
    burglary::int                      AS "Burglary",
    criminal_damage::int               AS "CriminalDamage",
    homicide::int                      AS "Homicide",
    locked_vehicle::int                AS "LockedVehicle",
    robbery::int                       AS "Robbery",
    sex_offense::int                   AS "SexOffense",
    theft::int                         AS "Theft",
    vehicle_theft::int                 AS "VehicleTheft"
FROM core.mpd_crime_incidents
ORDER BY incident_num
