-- require may not name an absolute path
return require "/etc/passwd"
