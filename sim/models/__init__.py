"""Reference models written from the port contracts: the MAC (:mod:`.mac`) and the exact cycle
counts of the array (:mod:`.cycles`)."""
