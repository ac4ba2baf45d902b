"""Storage: tables, migrations and one repository per aggregate. Only this package writes SQL."""
