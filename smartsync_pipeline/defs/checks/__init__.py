"""Asset checks on the mirrors (freshness per realm, counts against QBO, unique ids) and on the change
log (the whole hash chain). Each failing check names the realm(s) and what is wrong."""
