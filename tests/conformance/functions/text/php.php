<?php
function handler($event)
{
    return 'hello';
}
