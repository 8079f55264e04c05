"""Vocabulary for generated tenants: people, departments, SaaS apps, places and browsers.

Plain lists written for this project; changing their order changes every generated tenant, so
append rather than reorder.
"""

from __future__ import annotations

FIRST_NAMES: tuple[str, ...] = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
    "Christopher", "Lisa", "Daniel", "Nancy", "Matthew", "Betty", "Anthony", "Sandra", "Mark", "Margaret",
    "Donald", "Ashley", "Steven", "Kimberly", "Andrew", "Emily", "Paul", "Donna", "Joshua", "Michelle",
    "Kenneth", "Carol", "Kevin", "Amanda", "Brian", "Melissa", "George", "Deborah", "Timothy", "Stephanie",
    "Ronald", "Rebecca", "Jason", "Sharon", "Edward", "Laura", "Jeffrey", "Cynthia", "Ryan", "Dorothy",
    "Jacob", "Amy", "Gary", "Kathleen", "Nicholas", "Angela", "Eric", "Shirley", "Jonathan", "Emma",
    "Stephen", "Brenda", "Larry", "Pamela", "Justin", "Nicole", "Scott", "Anna", "Brandon", "Samantha",
    "Benjamin", "Katherine", "Samuel", "Christine", "Gregory", "Debra", "Alexander", "Rachel", "Patrick",
    "Carolyn", "Frank", "Janet", "Raymond", "Maria", "Jack", "Olivia", "Dennis", "Heather", "Jerry",
    "Helen", "Tyler", "Catherine", "Aaron", "Diane", "Jose", "Julie", "Adam", "Victoria", "Nathan",
    "Joyce", "Henry", "Lauren", "Zachary", "Kelly", "Douglas", "Christina", "Peter", "Ruth", "Kyle",
    "Joan", "Noah", "Virginia", "Ethan", "Judith", "Jeremy", "Evelyn", "Christian", "Hannah", "Walter",
    "Andrea", "Keith", "Megan", "Austin", "Cheryl", "Roger", "Jacqueline", "Terry", "Madison", "Sean",
    "Priya", "Arjun", "Wei", "Mei", "Hiroshi", "Yuki", "Omar", "Fatima", "Lucas", "Sofia", "Mateo",
    "Camila", "Lars", "Ingrid", "Pierre", "Chloe", "Felix", "Lena", "Tomasz", "Zofia", "Ahmed", "Leila",
    "Kwame", "Ama", "Diego", "Valentina", "Ivan", "Olga", "Raj", "Ananya", "Jin", "Soo", "Mohammed",
)

LAST_NAMES: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
    "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green",
    "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez",
    "Phillips", "Evans", "Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart",
    "Morris", "Morales", "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson",
    "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson", "Brooks",
    "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price", "Alvarez",
    "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez", "Powell", "Jenkins",
    "Perry", "Russell", "Sullivan", "Bell", "Coleman", "Butler", "Henderson", "Barnes", "Gonzales",
    "Fisher", "Vasquez", "Simmons", "Romero", "Jordan", "Patterson", "Alexander", "Hamilton", "Graham",
    "Reynolds", "Griffin", "Wallace", "Moreno", "West", "Cole", "Hayes", "Bryant", "Herrera", "Gibson",
    "Ellis", "Tran", "Medina", "Aguilar", "Stevens", "Murray", "Ford", "Castro", "Marshall", "Owens",
    "Harrison", "Fernandez", "McDonald", "Woods", "Washington", "Kennedy", "Wells", "Vargas", "Henry",
    "Chen", "Wang", "Zhang", "Liu", "Yamamoto", "Tanaka", "Suzuki", "Singh", "Kumar", "Sharma", "Khan",
    "Ali", "Silva", "Santos", "Oliveira", "Costa", "Schmidt", "Schneider", "Fischer", "Weber", "Dubois",
    "Laurent", "Rossi", "Russo", "Kowalski", "Nowak", "Novak", "Larsen", "Hansen", "Johansson", "Ivanov",
    "Mensah", "Okafor", "Haddad", "Cohen", "OBrien", "Murphy-Jones", "van-Dijk", "de-Vries", "Park", "Choi",
)

# (department, weight, job titles). Weights shape head counts: engineering and sales dominate.
DEPARTMENTS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("Engineering", 26, ("Software Engineer", "Senior Software Engineer", "Staff Engineer", "Engineering Manager", "SRE")),
    ("Sales", 18, ("Account Executive", "Sales Development Rep", "Sales Manager", "Solutions Engineer")),
    ("Customer Success", 10, ("Customer Success Manager", "Support Engineer", "Support Lead")),
    ("Marketing", 8, ("Marketing Manager", "Content Strategist", "Growth Marketer", "Designer")),
    ("Product", 7, ("Product Manager", "Senior Product Manager", "Product Designer", "UX Researcher")),
    ("Operations", 6, ("Operations Analyst", "Office Manager", "Business Operations Lead")),
    ("Finance", 5, ("Accountant", "Financial Analyst", "Controller", "Payroll Specialist")),
    ("People", 4, ("Recruiter", "People Partner", "HR Generalist")),
    ("IT", 4, ("IT Administrator", "Helpdesk Technician", "Security Engineer", "IT Manager")),
    ("Data", 5, ("Data Analyst", "Data Engineer", "Data Scientist")),
    ("Legal", 2, ("Counsel", "Paralegal", "Compliance Manager")),
    ("Executive", 1, ("Chief Executive Officer", "Chief Operating Officer", "Chief Technology Officer")),
)

LOCATIONS: tuple[str, ...] = ("Denver", "New York", "San Francisco", "London", "Berlin", "Remote", "Bangalore", "Toronto")
EMPLOYEE_TYPES: tuple[str, ...] = ("Full-time", "Full-time", "Full-time", "Full-time", "Contractor", "Part-time", "Intern")

# Extra user groups beyond "All Staff" and one per department; the second item lists departments
# whose groups are nested inside it (so nesting is exercised in /members and /membership).
EXTRA_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Product & Engineering", ("Engineering", "Product", "Data")),
    ("Go-To-Market", ("Sales", "Marketing", "Customer Success")),
    ("Contractors", ()),
    ("Security Champions", ()),
    ("People Managers", ()),
    ("G&A", ("Finance", "Legal", "People", "Operations")),
    ("VPN Users", ()),
    ("Early Access", ()),
)

# (connector name, display name). SSO catalogue apps; names are the connector keys JumpCloud uses.
APP_CATALOG: tuple[tuple[str, str], ...] = (
    ("slack", "Slack"), ("zoom", "Zoom"), ("google", "Google Workspace"), ("office365", "Microsoft 365"),
    ("salesforce", "Salesforce"), ("github", "GitHub"), ("atlassian", "Atlassian Cloud"), ("notion", "Notion"),
    ("figma", "Figma"), ("dropbox", "Dropbox"), ("box", "Box"), ("awsiam", "AWS IAM Identity Center"),
    ("zendesk", "Zendesk"), ("hubspot", "HubSpot"), ("asana", "Asana"), ("monday", "monday.com"),
    ("miro", "Miro"), ("docusign", "DocuSign"), ("gitlab", "GitLab"), ("datadog", "Datadog"),
    ("pagerduty", "PagerDuty"), ("okta", "Okta"), ("workday", "Workday"), ("bamboohr", "BambooHR"),
    ("netsuite", "NetSuite"), ("expensify", "Expensify"), ("greenhouse", "Greenhouse"), ("lattice", "Lattice"),
    ("1password", "1Password"), ("lucidchart", "Lucidchart"), ("smartsheet", "Smartsheet"), ("tableau", "Tableau"),
    ("snowflake", "Snowflake"), ("looker", "Looker"), ("intercom", "Intercom"), ("gong", "Gong"),
    ("outreach", "Outreach"), ("linkedin", "LinkedIn Sales Navigator"), ("webex", "Webex"), ("adobe", "Adobe Creative Cloud"),
    ("canva", "Canva"), ("loom", "Loom"), ("sentry", "Sentry"), ("newrelic", "New Relic"),
    ("cloudflare", "Cloudflare"), ("jamf", "Jamf Pro"), ("freshdesk", "Freshdesk"), ("airtable", "Airtable"),
    ("clickup", "ClickUp"), ("linear", "Linear"), ("confluence", "Confluence"), ("jira", "Jira Software"),
    ("bitbucket", "Bitbucket"), ("circleci", "CircleCI"), ("vercel", "Vercel"), ("heroku", "Heroku"),
    ("mailchimp", "Mailchimp"), ("marketo", "Marketo"), ("segment", "Segment"), ("mixpanel", "Mixpanel"),
)

APP_LABEL_SUFFIXES: tuple[str, ...] = ("EU", "Sandbox", "Staging", "APAC", "Legacy", "Partners", "Prod", "Dev")

# Fixed ISO-3166 style geo records (DI `geoip`): country, region code, region name, continent, tz, lat, lon.
GEO: tuple[tuple[str, str, str, str, str, float, float], ...] = (
    ("US", "CO", "Colorado", "NA", "America/Denver", 39.7392, -104.9903),
    ("US", "NY", "New York", "NA", "America/New_York", 40.7128, -74.006),
    ("US", "CA", "California", "NA", "America/Los_Angeles", 37.7749, -122.4194),
    ("GB", "ENG", "England", "EU", "Europe/London", 51.5072, -0.1276),
    ("DE", "BE", "Land Berlin", "EU", "Europe/Berlin", 52.52, 13.405),
    ("IN", "KA", "Karnataka", "AS", "Asia/Kolkata", 12.9716, 77.5946),
    ("CA", "ON", "Ontario", "NA", "America/Toronto", 43.6532, -79.3832),
    ("FR", "IDF", "Ile-de-France", "EU", "Europe/Paris", 48.8566, 2.3522),
    ("BR", "SP", "Sao Paulo", "SA", "America/Sao_Paulo", -23.5505, -46.6333),
    ("JP", "13", "Tokyo", "AS", "Asia/Tokyo", 35.6762, 139.6503),
    ("AU", "NSW", "New South Wales", "OC", "Australia/Sydney", -33.8688, 151.2093),
    ("NL", "NH", "North Holland", "EU", "Europe/Amsterdam", 52.3676, 4.9041),
)

# (name, version, os, os_name, os_version, device)
USER_AGENTS: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("Chrome", "124.0.6367", "Mac OS X", "Mac OS X", "10.15.7", "Mac"),
    ("Chrome", "124.0.6367", "Windows", "Windows", "10", "Other"),
    ("Safari", "17.4.1", "Mac OS X", "Mac OS X", "14.4.1", "Mac"),
    ("Firefox", "125.0", "Linux", "Ubuntu", "", "Other"),
    ("Edge", "124.0.2478", "Windows", "Windows", "11", "Other"),
    ("Mobile Safari", "17.4", "iOS", "iOS", "17.4.1", "iPhone"),
    ("Chrome Mobile", "124.0.6367", "Android", "Android", "14", "Generic Smartphone"),
    ("Other", "", "Other", "Other", "", "Other"),
)

# Public documentation networks (RFC 5737) so generated addresses never point at real hosts.
IP_PREFIXES: tuple[str, ...] = ("192.0.2", "198.51.100", "203.0.113")
