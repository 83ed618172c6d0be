-- What kind of alternative each offer was (same_category, upgrade, shifted) and by how many
-- minutes a shifted one moved the trip: conversion is reported per kind and per incentive.
ALTER TABLE offers ADD COLUMN alternative text;
ALTER TABLE offers ADD COLUMN shift_minutes integer;
