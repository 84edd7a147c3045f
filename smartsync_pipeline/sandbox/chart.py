"""The fixed parts of every seeded company: chart of accounts, payment terms and the words names are
made of. Account types and sub-types are QBO's own enumeration values."""

from __future__ import annotations

from dataclasses import dataclass

CLASSIFICATION = {
    "Bank": "Asset",
    "Accounts Receivable": "Asset",
    "Other Current Asset": "Asset",
    "Fixed Asset": "Asset",
    "Accounts Payable": "Liability",
    "Credit Card": "Liability",
    "Other Current Liability": "Liability",
    "Long Term Liability": "Liability",
    "Equity": "Equity",
    "Income": "Revenue",
    "Other Income": "Revenue",
    "Cost of Goods Sold": "Expense",
    "Expense": "Expense",
    "Other Expense": "Expense",
}


@dataclass(frozen=True)
class AccountSeed:
    name: str
    account_type: str
    sub_type: str


ACCOUNTS: tuple[AccountSeed, ...] = (
    AccountSeed("Checking", "Bank", "Checking"),
    AccountSeed("Savings", "Bank", "Savings"),
    AccountSeed("Operating Account", "Bank", "Checking"),
    AccountSeed("Payroll Account", "Bank", "Checking"),
    AccountSeed("Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable"),
    AccountSeed("Undeposited Funds", "Other Current Asset", "UndepositedFunds"),
    AccountSeed("Inventory Asset", "Other Current Asset", "Inventory"),
    AccountSeed("Prepaid Expenses", "Other Current Asset", "PrepaidExpenses"),
    AccountSeed("Employee Cash Advances", "Other Current Asset", "EmployeeCashAdvances"),
    AccountSeed("Furniture and Equipment", "Fixed Asset", "FurnitureAndFixtures"),
    AccountSeed("Vehicles", "Fixed Asset", "Vehicles"),
    AccountSeed("Accumulated Depreciation", "Fixed Asset", "AccumulatedDepreciation"),
    AccountSeed("Accounts Payable (A/P)", "Accounts Payable", "AccountsPayable"),
    AccountSeed("Visa Business Card", "Credit Card", "CreditCard"),
    AccountSeed("Amex Corporate Card", "Credit Card", "CreditCard"),
    AccountSeed("Sales Tax Payable", "Other Current Liability", "SalesTaxPayable"),
    AccountSeed("Payroll Liabilities", "Other Current Liability", "PayrollTaxPayable"),
    AccountSeed("Loan Payable", "Long Term Liability", "NotesPayable"),
    AccountSeed("Opening Balance Equity", "Equity", "OpeningBalanceEquity"),
    AccountSeed("Owner's Investment", "Equity", "OwnersEquity"),
    AccountSeed("Retained Earnings", "Equity", "RetainedEarnings"),
    AccountSeed("Sales of Product Income", "Income", "SalesOfProductIncome"),
    AccountSeed("Services", "Income", "ServiceFeeIncome"),
    AccountSeed("Consulting Income", "Income", "ServiceFeeIncome"),
    AccountSeed("Design Income", "Income", "ServiceFeeIncome"),
    AccountSeed("Installation Income", "Income", "ServiceFeeIncome"),
    AccountSeed("Maintenance Contracts", "Income", "ServiceFeeIncome"),
    AccountSeed("Discounts Given", "Income", "DiscountsRefundsGiven"),
    AccountSeed("Interest Earned", "Other Income", "InterestEarned"),
    AccountSeed("Other Income", "Other Income", "OtherMiscellaneousIncome"),
    AccountSeed("Cost of Goods Sold", "Cost of Goods Sold", "SuppliesMaterialsCogs"),
    AccountSeed("Cost of Labor", "Cost of Goods Sold", "CostOfLaborCos"),
    AccountSeed("Freight In", "Cost of Goods Sold", "ShippingFreightDeliveryCos"),
    AccountSeed("Advertising", "Expense", "AdvertisingPromotional"),
    AccountSeed("Automobile", "Expense", "Auto"),
    AccountSeed("Fuel", "Expense", "Auto"),
    AccountSeed("Bank Charges", "Expense", "BankCharges"),
    AccountSeed("Commissions & Fees", "Expense", "OtherMiscellaneousServiceCost"),
    AccountSeed("Dues & Subscriptions", "Expense", "DuesSubscriptions"),
    AccountSeed("Equipment Rental", "Expense", "EquipmentRental"),
    AccountSeed("Insurance", "Expense", "Insurance"),
    AccountSeed("Workers Compensation", "Expense", "Insurance"),
    AccountSeed("Legal & Professional Fees", "Expense", "LegalProfessionalFees"),
    AccountSeed("Accounting Fees", "Expense", "LegalProfessionalFees"),
    AccountSeed("Meals and Entertainment", "Expense", "EntertainmentMeals"),
    AccountSeed("Office Expenses", "Expense", "OfficeGeneralAdministrativeExpenses"),
    AccountSeed("Rent or Lease", "Expense", "RentOrLeaseOfBuildings"),
    AccountSeed("Repair & Maintenance", "Expense", "RepairMaintenance"),
    AccountSeed("Computer Repairs", "Expense", "RepairMaintenance"),
    AccountSeed("Shipping and Delivery", "Expense", "ShippingFreightDelivery"),
    AccountSeed("Stationery & Printing", "Expense", "SuppliesMaterials"),
    AccountSeed("Supplies", "Expense", "SuppliesMaterials"),
    AccountSeed("Software Subscriptions", "Expense", "DuesSubscriptions"),
    AccountSeed("Taxes & Licenses", "Expense", "TaxesPaid"),
    AccountSeed("Travel", "Expense", "Travel"),
    AccountSeed("Travel Meals", "Expense", "TravelMeals"),
    AccountSeed("Utilities", "Expense", "Utilities"),
    AccountSeed("Telephone", "Expense", "Utilities"),
    AccountSeed("Uncategorized Expense", "Expense", "OtherMiscellaneousServiceCost"),
    AccountSeed("Depreciation", "Other Expense", "Depreciation"),
    AccountSeed("Penalties & Settlements", "Other Expense", "PenaltiesSettlements"),
)


@dataclass(frozen=True)
class TermSeed:
    name: str
    due_days: int


TERMS: tuple[TermSeed, ...] = (
    TermSeed("Due on receipt", 0),
    TermSeed("Net 15", 15),
    TermSeed("Net 30", 30),
    TermSeed("Net 60", 60),
)

VENDOR_FIRST = (
    "Acme", "Summit", "Harbor", "Pioneer", "Cascade", "Redwood", "Bluebird", "Granite", "Evergreen",
    "Northwind", "Silverline", "Keystone", "Lakeside", "Ironwood", "Sunrise", "Crescent", "Falcon",
    "Meridian", "Sterling", "Horizon", "Oakridge", "Riverbend", "Beacon", "Copper", "Prairie",
    "Atlas", "Maple", "Coastal", "Highland", "Liberty", "Orchard", "Canyon", "Vista", "Anchor",
    "Juniper", "Timber", "Willow", "Frontier", "Compass", "Magnolia",
)  # fmt: skip
VENDOR_SECOND = (
    "Supply", "Logistics", "Office Products", "Paper", "Electric", "Plumbing", "Printing", "Freight",
    "Hardware", "Software", "Telecom", "Catering", "Cleaning", "Consulting", "Insurance", "Legal",
    "Landscaping", "Fuel", "Security", "Packaging", "Lumber", "Tools", "Marketing", "Staffing",
    "Equipment Rental", "Courier", "Water", "Waste Services", "Furniture", "Design",
)  # fmt: skip
VENDOR_SUFFIX = ("Inc", "LLC", "Co", "Ltd", "Group", "Partners")

GIVEN_NAMES = (
    "Amy", "Bill", "Carla", "Dylan", "Elena", "Frank", "Grace", "Hiro", "Ines", "Jamal", "Kara",
    "Liam", "Maya", "Nikhil", "Olga", "Pedro", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera",
    "Wes", "Xin", "Yara", "Zoe", "Aaron", "Bea", "Chen", "Dana", "Emil", "Fatima", "Gus", "Hana",
    "Ivan", "Jill", "Kofi", "Lena", "Marco", "Nora", "Omar", "Priya", "Ravi", "Sofia", "Tom",
    "Uma", "Victor", "Wendy", "Yusuf", "Zara", "Alan", "Beth", "Carlos", "Dee", "Eli", "Fern",
    "Gil", "Hugo", "Iris", "Jonas",
)  # fmt: skip
FAMILY_NAMES = (
    "Smith", "Johnson", "Lee", "Garcia", "Brown", "Nguyen", "Patel", "Kim", "Martinez", "Davis",
    "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Thompson",
    "White", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Torres", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera",
    "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz",
    "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy",
    "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey", "Reed",
    "Kelly", "Howard", "Ramos", "Kowalski", "Schmidt", "Novak", "Silva", "Okafor", "Haddad",
    "Tanaka", "Ivanova", "Rossi", "Dubois", "Larsen",
)  # fmt: skip
CITIES = (
    ("San Francisco", "CA", "94105"), ("Oakland", "CA", "94612"), ("Portland", "OR", "97205"),
    ("Seattle", "WA", "98101"), ("Denver", "CO", "80202"), ("Austin", "TX", "78701"),
    ("Chicago", "IL", "60601"), ("Boston", "MA", "02108"), ("Phoenix", "AZ", "85004"),
    ("Sacramento", "CA", "95814"), ("San Jose", "CA", "95113"), ("Reno", "NV", "89501"),
)  # fmt: skip
STREETS = ("Main St", "Oak Ave", "Market St", "2nd St", "Pine St", "Elm St", "Park Blvd", "Mission St")

SERVICE_WORDS = (
    "Installation", "Consultation", "Design", "Maintenance", "Inspection", "Repair", "Training",
    "Setup", "Support Plan", "Cleaning", "Delivery", "Assembly", "Audit", "Configuration",
)  # fmt: skip
PRODUCT_WORDS = (
    "Widget", "Bracket", "Panel", "Cable", "Sensor", "Valve", "Pump", "Filter", "Lamp", "Bolt Kit",
    "Controller", "Adapter", "Hinge", "Gasket", "Fan", "Battery", "Switch", "Tile", "Shelf", "Desk",
)  # fmt: skip
GRADES = ("Standard", "Premium", "Basic", "Deluxe", "Pro", "Compact", "Heavy Duty", "Eco")

BILL_NOTES = (
    "Monthly service", "Quarterly maintenance", "Rush order", "Per contract", "Reorder",
    "Net terms agreed by phone", "Includes freight", "Replacement parts",
)  # fmt: skip
INVOICE_MEMOS = ("Thank you for your business.", "Please pay by the due date.", "Net terms apply.")

# Vendors every seeded company has, whatever the seed: the query-escaping tests rely on them.
SPECIAL_VENDORS = ("O'Brien",)
